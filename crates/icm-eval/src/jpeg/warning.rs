//! Warnings of lenient decoding ([`crate::jpeg::DecodeOptions::lenient`]): what was wrong
//! with the file, where, and what the decoder did about it, following libjpeg's recovery
//! (its `JWRN_*` warnings) so that the coefficients are the ones libjpeg returns.

use super::error::marker_name;
use std::fmt;

/// At most this many warnings are listed; the rest are counted in a last
/// [`WarningKind::Omitted`] entry (a corrupt scan may have one bad code per block).
pub const MAX_WARNINGS: usize = 100;

/// One repair made by lenient decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JpegWarning {
    /// What was wrong and what was done.
    pub kind: WarningKind,
    /// Byte offset from the start of the file (for entropy-coded data, approximately the
    /// byte being read; for a marker, its `FF`).
    pub offset: usize,
    /// Scan (1 for the first SOS), or 0 outside scans.
    pub scan: u32,
    /// MCU of the scan (0-based, in coding order; a block for single-component scans),
    /// `None` outside entropy-coded data.
    pub mcu: Option<u64>,
}

/// The kinds of [`JpegWarning`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningKind {
    /// The entropy-coded segment (a scan, or a restart interval of one) ended, at a marker
    /// or at the end of the file, before its MCUs were decoded (libjpeg's "premature end of
    /// data segment"). The MCU that needed the missing bits was decoded from zero bits, and
    /// the later MCUs were left unchanged (zero, or what earlier scans of a progressive
    /// file had set) up to the restart marker where decoding resumed, or the end of the
    /// scan.
    PrematureEnd {
        /// The marker that ended the data (`None`: the end of the file).
        marker: Option<u8>,
        /// MCUs left unchanged after the one cut.
        mcus_left: u64,
    },
    /// A Huffman code matching no code of its table (17 bits read, decoded as symbol 0,
    /// as libjpeg does).
    BadHuffmanCode,
    /// Other impossible values in the entropy-coded data, decoded as libjpeg does.
    CorruptData {
        /// What was wrong and what was done.
        what: &'static str,
    },
    /// A new coefficient of an AC refinement scan coded with a size other than 1, read as
    /// size 1 (one sign bit), as libjpeg reads it (and as strict decoding does, silently).
    RefinementSize,
    /// The marker after a restart interval was not the expected RSTn; the decoder
    /// resynchronised as libjpeg's `jpeg_resync_to_restart` does (discard it, scan ahead
    /// past an earlier RSTn, or leave a later one for its interval and decode the
    /// intervals in between as empty). Listed once for a marker met at several restarts.
    BadRestart {
        /// n of the RSTn expected.
        expected: u8,
        /// The marker found (`None`: the end of the file).
        found: Option<u8>,
    },
    /// Bytes that are neither entropy-coded data nor markers were skipped before a marker.
    ExtraneousData {
        /// How many (libjpeg's count: other bytes one each, `FF 00` two).
        bytes: usize,
        /// The marker they preceded (`None`: the end of the file).
        marker: Option<u8>,
    },
    /// The file ends without EOI (after the last complete marker segment, or inside an
    /// application or comment segment); decoding stops there.
    MissingEoi,
    /// A sequential scan's Ss, Se, Ah, Al are not 0, 63, 0, 0; ignored, as libjpeg does.
    NotSequential {
        /// Ss.
        ss: u8,
        /// Se.
        se: u8,
        /// Ah.
        ah: u8,
        /// Al.
        al: u8,
    },
    /// A DNL marker segment, skipped as libjpeg does.
    IgnoredDnl,
    /// A header field that strict decoding refuses and libjpeg 6b accepts (a repeated
    /// component identifier, a table selector out of range where the table is not used, no
    /// quantisation table for a component that no scan carries), accepted as libjpeg does.
    Tolerated {
        /// What was accepted, and how it was read.
        what: String,
    },
    /// More warnings than [`MAX_WARNINGS`]: how many were not listed.
    Omitted {
        /// Warnings not listed.
        count: u64,
    },
}

impl WarningKind {
    /// Whether strict decoding refuses a file with this defect. Bytes skipped before a
    /// marker and refinement coefficients of odd size are accepted silently by both modes
    /// (strict decoding reads them as libjpeg does); everything else is an error there.
    pub fn strict_refuses(&self) -> bool {
        !matches!(
            self,
            WarningKind::ExtraneousData { .. } | WarningKind::RefinementSize
        )
    }
}

fn marker_or_eof(m: Option<u8>) -> String {
    m.map(marker_name)
        .unwrap_or_else(|| "the end of the file".into())
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WarningKind::PrematureEnd { marker, mcus_left } => {
                write!(
                    f,
                    "entropy-coded data ends early (at {}): the rest of this MCU decoded \
                     from zero bits",
                    marker_or_eof(*marker)
                )?;
                if *mcus_left > 0 {
                    write!(f, ", {mcus_left} later MCU(s) left unchanged")?;
                }
                Ok(())
            }
            WarningKind::BadHuffmanCode => {
                write!(f, "invalid Huffman code, decoded as symbol 0")
            }
            WarningKind::CorruptData { what } => write!(f, "corrupt scan data: {what}"),
            WarningKind::RefinementSize => write!(
                f,
                "refinement coefficient coded with a size other than 1, read as size 1"
            ),
            WarningKind::BadRestart { expected, found } => write!(
                f,
                "expected RST{expected}, found {}; resynchronised",
                marker_or_eof(*found)
            ),
            WarningKind::ExtraneousData { bytes, marker } => write!(
                f,
                "{bytes} extraneous byte(s) before {}",
                marker_or_eof(*marker)
            ),
            WarningKind::MissingEoi => write!(f, "file ends without an EOI marker"),
            WarningKind::NotSequential { ss, se, ah, al } => write!(
                f,
                "sequential scan with Ss={ss} Se={se} Ah={ah} Al={al}, decoded as Ss=0 Se=63 \
                 Ah=0 Al=0"
            ),
            WarningKind::IgnoredDnl => write!(f, "DNL marker segment ignored"),
            WarningKind::Tolerated { what } => write!(f, "accepted as libjpeg does: {what}"),
            WarningKind::Omitted { count } => write!(f, "{count} more warning(s) not listed"),
        }
    }
}

impl fmt::Display for JpegWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)?;
        match self.mcu {
            Some(m) => write!(f, " (scan {}, MCU {m})", self.scan),
            None if self.scan > 0 => write!(f, " (scan {})", self.scan),
            None => Ok(()),
        }
    }
}

/// The warnings of one decode, at most [`MAX_WARNINGS`] listed.
#[derive(Debug, Default)]
pub(crate) struct Warnings {
    list: Vec<JpegWarning>,
    omitted: u64,
}

impl Warnings {
    pub(crate) fn push(&mut self, kind: WarningKind, offset: usize, scan: u32, mcu: Option<u64>) {
        if self.list.len() < MAX_WARNINGS {
            self.list.push(JpegWarning {
                kind,
                offset,
                scan,
                mcu,
            });
        } else {
            self.omitted += 1;
        }
    }

    pub(crate) fn finish(mut self) -> Vec<JpegWarning> {
        if self.omitted > 0 {
            let last = self
                .list
                .last()
                .map(|w| (w.offset, w.scan))
                .unwrap_or((0, 0));
            self.list.push(JpegWarning {
                kind: WarningKind::Omitted {
                    count: self.omitted,
                },
                offset: last.0,
                scan: last.1,
                mcu: None,
            });
        }
        self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_place() {
        let w = JpegWarning {
            kind: WarningKind::PrematureEnd {
                marker: None,
                mcus_left: 3,
            },
            offset: 1234,
            scan: 2,
            mcu: Some(17),
        };
        let s = w.to_string();
        assert!(s.contains("at byte 1234 (scan 2, MCU 17)"), "{s}");
        assert!(
            s.contains("end of the file") && s.contains("3 later MCU"),
            "{s}"
        );
        let w = JpegWarning {
            kind: WarningKind::MissingEoi,
            offset: 99,
            scan: 0,
            mcu: None,
        };
        assert_eq!(w.to_string(), "file ends without an EOI marker at byte 99");
    }

    #[test]
    fn the_list_is_capped() {
        let mut w = Warnings::default();
        for i in 0..MAX_WARNINGS + 5 {
            w.push(WarningKind::BadHuffmanCode, i, 1, Some(i as u64));
        }
        let list = w.finish();
        assert_eq!(list.len(), MAX_WARNINGS + 1);
        assert_eq!(list[MAX_WARNINGS].kind, WarningKind::Omitted { count: 5 });
    }
}
