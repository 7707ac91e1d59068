//! Marker and marker-segment parsing (T.81 Annex B): finding markers, segment lengths, and
//! the frame (SOF, B.2.2), scan (SOS, B.2.3), Huffman (DHT, B.2.4.2), quantisation (DQT,
//! B.2.4.1) and restart-interval (DRI, B.2.4.4) headers.

use super::error::JpegError;
use super::huffman::HuffmanTable;
use super::zigzag::NATURAL;

/// SOF0: baseline DCT.
pub const SOF0: u8 = 0xC0;
/// SOF1: extended sequential DCT, Huffman.
pub const SOF1: u8 = 0xC1;
/// SOF2: progressive DCT, Huffman.
pub const SOF2: u8 = 0xC2;
/// DHT.
pub const DHT: u8 = 0xC4;
/// SOI.
pub const SOI: u8 = 0xD8;
/// EOI.
pub const EOI: u8 = 0xD9;
/// SOS.
pub const SOS: u8 = 0xDA;
/// DQT.
pub const DQT: u8 = 0xDB;
/// DNL.
pub const DNL: u8 = 0xDC;
/// DRI.
pub const DRI: u8 = 0xDD;

/// A marker found in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// The code after `FF`.
    pub code: u8,
    /// Offset of the `FF` before the code.
    pub offset: usize,
}

/// Finds the next marker at or after `pos`, skipping fill bytes `FF` (B.1.1.2) and, as
/// libjpeg does with a warning, any other bytes before it. `None` at the end of the data.
pub fn next_marker(data: &[u8], mut pos: usize) -> Option<Marker> {
    loop {
        let b = *data.get(pos)?;
        if b != 0xFF {
            pos += 1;
            continue;
        }
        let mut q = pos + 1;
        while data.get(q) == Some(&0xFF) {
            q += 1;
        }
        let code = *data.get(q)?;
        if code == 0 {
            // A stuffed zero outside a scan: not a marker.
            pos = q + 1;
            continue;
        }
        return Some(Marker {
            code,
            offset: q - 1,
        });
    }
}

/// The payload of the marker segment whose marker is `m` (B.1.1.4): the bytes after the
/// 2-byte length, and the offset just past the segment.
pub fn segment(data: &[u8], m: Marker) -> Result<(&[u8], usize), JpegError> {
    let at = m.offset + 2;
    let len = match data.get(at..at + 2) {
        Some(b) => usize::from(u16::from_be_bytes([b[0], b[1]])),
        None => {
            return Err(JpegError::Truncated {
                offset: at,
                what: "segment length",
            })
        }
    };
    if len < 2 {
        return Err(JpegError::BadSegment {
            offset: m.offset,
            marker: m.code,
            what: format!("length {len} (at least 2)"),
        });
    }
    match data.get(at + 2..at + len) {
        Some(p) => Ok((p, at + len)),
        None => Err(JpegError::Truncated {
            offset: data.len(),
            what: "marker segment",
        }),
    }
}

/// Frame coding process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// SOF0 (T.81 4.4, Annex F).
    Baseline,
    /// SOF1 (Annex F), 8-bit samples.
    ExtendedSequential,
    /// SOF2 (Annex G).
    Progressive,
}

/// A frame component specification (B.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameComponent {
    /// Component identifier C.
    pub id: u8,
    /// Horizontal sampling factor H (1..=4).
    pub h: u8,
    /// Vertical sampling factor V (1..=4).
    pub v: u8,
    /// Quantisation table selector Tq (0..=3).
    pub tq: u8,
}

/// A frame header (B.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameHeader {
    /// Coding process.
    pub process: Process,
    /// Number of lines Y (> 0: DNL is not supported).
    pub height: u16,
    /// Samples per line X.
    pub width: u16,
    /// Components in frame order.
    pub components: Vec<FrameComponent>,
}

fn bad(m: Marker, what: impl Into<String>) -> JpegError {
    JpegError::BadSegment {
        offset: m.offset,
        marker: m.code,
        what: what.into(),
    }
}

/// Parses SOF0/SOF1/SOF2 (B.2.2). 8-bit precision only; Y = 0 (height given by DNL) is
/// refused as unsupported. 1 to 4 components with sampling factors 1..=4.
///
/// With `lenient`, as in libjpeg: component identifiers may repeat (a scan names the first
/// component with its identifier), and a quantisation table selector above 3 is refused
/// only when a scan of the component needs the table; what was accepted so is returned
/// with the header.
pub fn parse_sof(
    m: Marker,
    p: &[u8],
    lenient: bool,
) -> Result<(FrameHeader, Vec<String>), JpegError> {
    let process = match m.code {
        SOF0 => Process::Baseline,
        SOF1 => Process::ExtendedSequential,
        SOF2 => Process::Progressive,
        _ => return Err(bad(m, "not a supported SOF")),
    };
    if p.len() < 6 {
        return Err(bad(m, format!("length {} (at least 8)", p.len() + 2)));
    }
    let precision = p[0];
    if precision != 8 {
        return Err(JpegError::Unsupported {
            offset: m.offset,
            what: format!("{precision}-bit sample precision (8 only)"),
        });
    }
    let height = u16::from_be_bytes([p[1], p[2]]);
    let width = u16::from_be_bytes([p[3], p[4]]);
    if height == 0 {
        return Err(JpegError::Unsupported {
            offset: m.offset,
            what: "number of lines 0 (height defined by DNL)".into(),
        });
    }
    if width == 0 {
        return Err(bad(m, "samples per line 0"));
    }
    let nc = usize::from(p[5]);
    if !(1..=4).contains(&nc) {
        return Err(bad(m, format!("{nc} components (1 to 4)")));
    }
    if p.len() != 6 + 3 * nc {
        return Err(bad(
            m,
            format!(
                "length {} for {nc} components (want {})",
                p.len() + 2,
                8 + 3 * nc
            ),
        ));
    }
    let mut components: Vec<FrameComponent> = Vec::with_capacity(nc);
    let mut tolerated = Vec::new();
    for i in 0..nc {
        let c = &p[6 + 3 * i..9 + 3 * i];
        let fc = FrameComponent {
            id: c[0],
            h: c[1] >> 4,
            v: c[1] & 15,
            tq: c[2],
        };
        if !(1..=4).contains(&fc.h) || !(1..=4).contains(&fc.v) {
            return Err(bad(
                m,
                format!(
                    "component {} sampling factors {}x{} (1 to 4)",
                    fc.id, fc.h, fc.v
                ),
            ));
        }
        if fc.tq > 3 {
            let what = format!("component {} quantisation table {} (0 to 3)", fc.id, fc.tq);
            if !lenient {
                return Err(bad(m, what));
            }
            tolerated.push(format!("{what}, needed only by a scan of the component"));
        }
        if components.iter().any(|o| o.id == fc.id) {
            let what = format!("duplicate component identifier {}", fc.id);
            if !lenient {
                return Err(bad(m, what));
            }
            tolerated.push(format!("{what}, scans name the first"));
        }
        components.push(fc);
    }
    let header = FrameHeader {
        process,
        height,
        width,
        components,
    };
    Ok((header, tolerated))
}

/// One table of a DHT segment: class (0 DC, 1 AC), slot, table.
pub type HuffmanDefinition = (u8, u8, HuffmanTable);

/// Parses DHT (B.2.4.2): one or more tables.
pub fn parse_dht(m: Marker, mut p: &[u8]) -> Result<Vec<HuffmanDefinition>, JpegError> {
    let mut out = Vec::new();
    while !p.is_empty() {
        if p.len() < 17 {
            return Err(bad(m, "table header cut short"));
        }
        let (tc, th) = (p[0] >> 4, p[0] & 15);
        if tc > 1 || th > 3 {
            return Err(bad(m, format!("table class {tc} / identifier {th}")));
        }
        let mut counts = [0u8; 16];
        counts.copy_from_slice(&p[1..17]);
        let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
        let values = p
            .get(17..17 + n)
            .ok_or_else(|| bad(m, format!("{n} symbol values past the segment end")))?;
        let table = HuffmanTable::new(&counts, values)
            .map_err(|e| bad(m, format!("table {tc}/{th}: {e}")))?;
        out.push((tc, th, table));
        p = &p[17 + n..];
    }
    Ok(out)
}

/// Parses DQT (B.2.4.1): one or more tables, returned in natural (row-major) order. 8- and
/// 16-bit tables are both accepted (libjpeg does).
pub fn parse_dqt(m: Marker, mut p: &[u8]) -> Result<Vec<(u8, [u16; 64])>, JpegError> {
    let mut out = Vec::new();
    while !p.is_empty() {
        let (pq, tq) = (p[0] >> 4, p[0] & 15);
        if pq > 1 || tq > 3 {
            return Err(bad(m, format!("precision {pq} / identifier {tq}")));
        }
        let size = if pq == 0 { 64 } else { 128 };
        let body = p
            .get(1..1 + size)
            .ok_or_else(|| bad(m, format!("table {tq} cut short")))?;
        let mut q = [0u16; 64];
        for (k, &nat) in NATURAL.iter().enumerate() {
            q[nat] = if pq == 0 {
                u16::from(body[k])
            } else {
                u16::from_be_bytes([body[2 * k], body[2 * k + 1]])
            };
        }
        out.push((tq, q));
        p = &p[1 + size..];
    }
    Ok(out)
}

/// Parses DRI (B.2.4.4): the restart interval in MCUs (0 disables restarts).
pub fn parse_dri(m: Marker, p: &[u8]) -> Result<u16, JpegError> {
    match p {
        [a, b] => Ok(u16::from_be_bytes([*a, *b])),
        _ => Err(bad(m, format!("length {} (want 4)", p.len() + 2))),
    }
}

/// What lenient parsing of a scan header accepted that strict parsing refuses.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Ss, Se, Ah, Al of a sequential scan that are not 0, 63, 0, 0 (read as those).
    pub not_sequential: Option<[u8; 4]>,
    /// Other fields accepted as libjpeg accepts them, described.
    pub tolerated: Vec<String>,
}

/// A scan component specification (B.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanComponent {
    /// Index of the component in the frame.
    pub index: usize,
    /// DC table selector Td.
    pub td: u8,
    /// AC table selector Ta.
    pub ta: u8,
}

/// A scan header (B.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanHeader {
    /// Components of the scan, in scan order.
    pub components: Vec<ScanComponent>,
    /// Start of spectral selection Ss.
    pub ss: u8,
    /// End of spectral selection Se.
    pub se: u8,
    /// Successive approximation bit position high Ah.
    pub ah: u8,
    /// Successive approximation bit position low Al.
    pub al: u8,
}

/// Parses SOS (B.2.3) against the frame, and checks the scan parameters of the frame's
/// process: Ss = 0, Se = 63, Ah = Al = 0 for sequential frames; for progressive ones
/// (G.1.1.1.1) a DC scan has Se = 0, an AC scan one component and 1 <= Ss <= Se <= 63,
/// Al <= 13 and a refinement Al = Ah - 1. An interleaved scan has at most 10 blocks per MCU.
///
/// With `lenient`, as in libjpeg 6b: a sequential scan whose Ss, Se, Ah, Al are not 0, 63,
/// 0, 0 is accepted as if they were (libjpeg warns and decodes it so; some encoders write
/// zeros there), and the values read are returned with it; a component may appear twice
/// (each time with the table selectors of its last appearance); table selectors above 3
/// are refused only where the scan uses the table ([`JpegError::MissingTable`]). What was
/// accepted so is returned too.
pub fn parse_sos(
    m: Marker,
    p: &[u8],
    frame: &FrameHeader,
    lenient: bool,
) -> Result<(ScanHeader, Accepted), JpegError> {
    let ns = usize::from(*p.first().ok_or_else(|| bad(m, "empty"))?);
    if !(1..=4).contains(&ns) {
        return Err(bad(m, format!("{ns} components in scan (1 to 4)")));
    }
    if p.len() != 4 + 2 * ns {
        return Err(bad(
            m,
            format!(
                "length {} for {ns} components (want {})",
                p.len() + 2,
                6 + 2 * ns
            ),
        ));
    }
    let mut components: Vec<ScanComponent> = Vec::with_capacity(ns);
    let mut tolerated = Vec::new();
    for i in 0..ns {
        let (cs, t) = (p[1 + 2 * i], p[2 + 2 * i]);
        let index = frame
            .components
            .iter()
            .position(|c| c.id == cs)
            .ok_or_else(|| bad(m, format!("component {cs} is not in the frame")))?;
        let (td, ta) = (t >> 4, t & 15);
        if components.iter().any(|c| c.index == index) {
            let what = format!("component {cs} twice in the scan");
            if !lenient {
                return Err(bad(m, what));
            }
            // libjpeg keeps the selectors in the component: the last ones win.
            for c in components.iter_mut().filter(|c| c.index == index) {
                (c.td, c.ta) = (td, ta);
            }
            tolerated.push(format!("{what}, with its last table selectors"));
        }
        if td > 3 || ta > 3 {
            let what = format!("component {cs} table selectors {td}/{ta}");
            if !lenient {
                return Err(bad(m, what));
            }
            tolerated.push(format!("{what}, refused only where the table is used"));
        }
        components.push(ScanComponent { index, td, ta });
    }
    let q = &p[1 + 2 * ns..];
    let (ss, se, ah, al) = (q[0], q[1], q[2] >> 4, q[2] & 15);
    if ns > 1 {
        let blocks: u32 = components
            .iter()
            .map(|c| {
                let fc = &frame.components[c.index];
                u32::from(fc.h) * u32::from(fc.v)
            })
            .sum();
        if blocks > 10 {
            return Err(bad(m, format!("{blocks} blocks per MCU (at most 10)")));
        }
    }
    let ok = match frame.process {
        Process::Baseline | Process::ExtendedSequential => {
            ss == 0 && se == 63 && ah == 0 && al == 0
        }
        Process::Progressive => {
            let band = if ss == 0 {
                se == 0
            } else {
                ss <= se && se <= 63 && ns == 1
            };
            band && al <= 13 && (ah == 0 || al + 1 == ah)
        }
    };
    if !ok {
        if lenient && frame.process != Process::Progressive {
            let sh = ScanHeader {
                components,
                ss: 0,
                se: 63,
                ah: 0,
                al: 0,
            };
            let accepted = Accepted {
                not_sequential: Some([ss, se, ah, al]),
                tolerated,
            };
            return Ok((sh, accepted));
        }
        return Err(bad(
            m,
            format!("scan parameters Ss={ss} Se={se} Ah={ah} Al={al} for {ns} component(s)"),
        ));
    }
    let sh = ScanHeader {
        components,
        ss,
        se,
        ah,
        al,
    };
    let accepted = Accepted {
        not_sequential: None,
        tolerated,
    };
    Ok((sh, accepted))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Marker = Marker {
        code: SOF0,
        offset: 0,
    };

    #[test]
    fn finds_markers_after_fill_and_garbage() {
        let d = [0x12, 0xFF, 0x00, 0xFF, 0xFF, 0xDB, 0x00];
        assert_eq!(
            next_marker(&d, 0),
            Some(Marker {
                code: DQT,
                offset: 4
            })
        );
        assert_eq!(next_marker(&d[..5], 0), None);
    }

    #[test]
    fn segment_lengths_are_checked() {
        let d = [0xFF, 0xFE, 0x00, 0x05, b'a', b'b'];
        let m = next_marker(&d, 0).expect("marker");
        assert!(matches!(segment(&d, m), Err(JpegError::Truncated { .. })));
        let d = [0xFF, 0xFE, 0x00, 0x04, b'a', b'b', 0xFF];
        assert_eq!(segment(&d, m).expect("segment"), (&b"ab"[..], 6));
        let d = [0xFF, 0xFE, 0x00, 0x01];
        assert!(matches!(segment(&d, m), Err(JpegError::BadSegment { .. })));
    }

    #[test]
    fn sof_fields() {
        let p = [8, 0, 7, 0, 13, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1];
        let (f, _) = parse_sof(AT, &p, false).expect("sof");
        assert_eq!((f.width, f.height, f.components.len()), (13, 7, 3));
        assert_eq!((f.components[0].h, f.components[0].v), (2, 2));
        let mut twelve = p;
        twelve[0] = 12;
        assert!(matches!(
            parse_sof(AT, &twelve, false),
            Err(JpegError::Unsupported { .. })
        ));
        let mut zero_h = p;
        zero_h[7] = 0x02;
        assert!(parse_sof(AT, &zero_h, false).is_err());
        let mut dup = p;
        dup[9] = 1;
        assert!(parse_sof(AT, &dup, false).is_err());
        let (h, tolerated) = parse_sof(AT, &dup, true).expect("lenient");
        assert_eq!((h.components[1].id, tolerated.len()), (1, 1));
        assert!(parse_sof(AT, &p[..14], false).is_err());
    }

    #[test]
    fn dqt_is_stored_in_natural_order() {
        let mut p = vec![0x01];
        p.extend((0..64).map(|k| k as u8));
        let t = parse_dqt(AT, &p).expect("dqt");
        assert_eq!(t[0].0, 1);
        assert_eq!(t[0].1[8], 2); // zig-zag index 2 is row 1, column 0
        assert_eq!(t[0].1[1], 1);
        assert_eq!(t[0].1[63], 63);
    }

    #[test]
    fn progressive_scan_parameters() {
        let f = parse_sof(
            Marker {
                code: SOF2,
                offset: 0,
            },
            &[8, 0, 8, 0, 8, 3, 1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1],
            false,
        )
        .expect("sof")
        .0;
        let sos = |ns: u8, ss: u8, se: u8, a: u8| {
            let mut p = vec![ns];
            for i in 0..ns {
                p.extend([i + 1, 0x00]);
            }
            p.extend([ss, se, a]);
            parse_sos(AT, &p, &f, false).map(|(sh, _)| sh)
        };
        assert!(sos(3, 0, 0, 0x01).is_ok()); // DC first, interleaved
        assert!(sos(3, 0, 0, 0x10).is_ok()); // DC refine
        assert!(sos(1, 1, 5, 0x02).is_ok()); // AC first
        assert!(sos(1, 6, 63, 0x21).is_ok()); // AC refine
        assert!(sos(3, 1, 5, 0x00).is_err()); // interleaved AC
        assert!(sos(1, 0, 5, 0x00).is_err()); // DC and AC mixed
        assert!(sos(1, 6, 5, 0x00).is_err()); // empty band
        assert!(sos(1, 1, 5, 0x20).is_err()); // refine by two bits
        assert!(sos(1, 1, 64, 0x00).is_err());
        // Lenient decoding still refuses bad progressive parameters ...
        assert!(parse_sos(AT, &[1, 1, 0, 1, 5, 0x20], &f, true).is_err());
        // ... but reads a sequential scan with zeros for Ss, Se as a full one.
        let mut seq = f.clone();
        seq.process = Process::Baseline;
        let (sh, acc) = parse_sos(AT, &[1, 1, 0, 0, 0, 0], &seq, true).expect("lenient");
        let odd = acc.not_sequential;
        assert_eq!(
            (sh.ss, sh.se, sh.ah, sh.al, odd),
            (0, 63, 0, 0, Some([0, 0, 0, 0]))
        );
        assert!(parse_sos(AT, &[1, 1, 0, 0, 0, 0], &seq, false).is_err());
        // ... and a component twice, with the last table selectors, or a table selector
        // above 3 (refused only if the table is used).
        let twice = [2, 1, 0x00, 1, 0x11, 0, 63, 0];
        assert!(parse_sos(AT, &twice, &seq, false).is_err());
        let (sh, acc) = parse_sos(AT, &twice, &seq, true).expect("lenient");
        let tolerated = acc.tolerated;
        let sel: Vec<_> = sh
            .components
            .iter()
            .map(|c| (c.index, c.td, c.ta))
            .collect();
        assert_eq!(sel, vec![(0, 1, 1), (0, 1, 1)]);
        assert_eq!(tolerated.len(), 1, "{tolerated:?}");
        assert!(parse_sos(AT, &[1, 1, 0xF0, 0, 0, 0x10], &f, false).is_err());
        assert!(parse_sos(AT, &[1, 1, 0xF0, 0, 0, 0x10], &f, true).is_ok());
    }
}
