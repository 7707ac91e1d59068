//! The MCU loop of a scan with restart intervals (T.81 A.2, B.2.4.4, E.2.4, F.2.1.3,
//! G.1.2): interleaved scans visit MCUs of H x V blocks per component (A.2.3), single-
//! component scans visit the component's blocks one by one (A.2.2); every `Ri` MCUs the
//! entropy-coded segment ends with RSTn (n counting 0..7 modulo 8), the decoder's
//! predictions and end-of-band run are reset, and the bit reader restarts after the marker.
//!
//! Lenient decoding ([`decode_mcus`] with `L`) follows libjpeg's entropy decoders
//! (`jdhuff.c`, `jdphuff.c`, version 6b and later) and `jdmarker.c`:
//! * data that ends early (a marker, or the end of the file, where libjpeg's data source
//!   inserts an EOI) supplies zero bits; the MCU that needs them is decoded from them, and
//!   the MCUs after it are left unchanged up to the next restart (libjpeg's
//!   `insufficient_data`);
//! * at a restart the marker is read as `read_restart_marker` reads it, and a wrong one is
//!   handled as `jpeg_resync_to_restart` handles it: an RSTn one or two ahead of the
//!   expected one, or any other marker, is left in place (the intervals before it are
//!   decoded as empty), one or two behind is skipped with the data up to the next marker,
//!   anything else is discarded and decoding resumes after it. The flag of data run out is
//!   cleared only when the restart leaves no marker pending.

use super::bitreader::{Anomaly, BitReader};
use super::error::JpegError;
use super::layout::FrameLayout;
use super::markers::ScanHeader;
use super::warning::{WarningKind, Warnings};

/// State that a restart resets: DC predictions (F.2.1.3.1) and EOBRUN (G.1.2.2).
#[derive(Debug, Default, Clone, Copy)]
pub struct ScanState {
    /// DC prediction per scan component (the previous DC value, before any point transform).
    pub pred: [i32; 4],
    /// Blocks still to skip in the current end-of-band run.
    pub eobrun: u32,
}

/// Where lenient decoding reports its warnings: the list and the scan number (1-based).
pub struct Lenient<'w> {
    /// The decode's warnings.
    pub warnings: &'w mut Warnings,
    /// The scan being decoded.
    pub scan: u32,
}

/// Decodes the MCUs of one scan: `block(reader, state, scan component index, block)` is
/// called for every block in coding order. Strict (`L` false): ends with a
/// [`JpegError::TruncatedScan`] when the data runs out before the last MCU, and with
/// [`JpegError::BadRestart`] at a wrong restart marker. Lenient: recovers as libjpeg does
/// (see the module documentation) and reports to `lenient`.
pub fn decode_mcus<const L: bool, F>(
    layout: &FrameLayout,
    scan: &ScanHeader,
    storage: &mut [Vec<i16>],
    br: &mut BitReader<'_>,
    restart_interval: u16,
    lenient: Option<Lenient<'_>>,
    mut block: F,
) -> Result<(), JpegError>
where
    F: FnMut(&mut BitReader<'_>, &mut ScanState, usize, &mut [i16; 64]) -> Result<(), JpegError>,
{
    let single = scan.components.len() == 1;
    let (mcus_x, mcus_y) = if single {
        let c = &layout.components[scan.components[0].index];
        (c.blocks_w, c.blocks_h)
    } else {
        (layout.mcus_x, layout.mcus_y)
    };
    let total = mcus_x as u64 * mcus_y as u64;
    let ri = u32::from(restart_interval);
    // MCUs left in the current restart interval.
    let mut left = ri;
    let mut st = ScanState::default();
    let mut next_rst = 0u8;
    let mut done = 0u64;
    // Lenient: libjpeg's insufficient_data, and the cut not yet reported (offset of the
    // end, marker, MCU, MCUs skipped since).
    let mut insufficient = false;
    let mut cut: Option<(usize, Option<u8>, u64, u64)> = None;
    // Offset of the wrong marker last reported: a marker left pending is met again at
    // every restart (libjpeg warns each time; one warning is listed).
    let mut reported_at: Option<usize> = None;
    let mut lenient = lenient;
    for my in 0..mcus_y {
        for mx in 0..mcus_x {
            let n = my as u64 * mcus_x as u64 + mx as u64;
            if ri > 0 && left == 0 {
                if L {
                    let lw = lenient.as_mut().ok_or_else(internal)?;
                    restart_lenient(br, next_rst, lw, n, &mut reported_at);
                    if !br.at_marker() {
                        // Decoding resumes after the marker: the cut segment ends here.
                        insufficient = false;
                        report_cut(lw, cut.take());
                    }
                } else {
                    let (found, at) = br.next_marker();
                    if found != Some(0xD0 + next_rst) {
                        return Err(JpegError::BadRestart {
                            offset: at,
                            expected: next_rst,
                            found,
                        });
                    }
                }
                next_rst = (next_rst + 1) & 7;
                st = ScanState::default();
                left = ri;
            }
            left = left.saturating_sub(1);
            if L && insufficient {
                // libjpeg leaves the MCU as it is (its DC refinement scans read zero bits,
                // which change nothing).
                if let Some(c) = cut.as_mut() {
                    c.3 += 1;
                }
                continue;
            }
            let result = decode_mcu(
                layout, scan, storage, br, &mut st, single, mx, my, &mut block,
            );
            if L {
                let lw = lenient.as_mut().ok_or_else(internal)?;
                for (a, at) in br.anomalies.drain(..) {
                    let kind = match a {
                        Anomaly::BadHuffmanCode => WarningKind::BadHuffmanCode,
                        Anomaly::RunPastBand => WarningKind::CorruptData {
                            what: "zero run past the end of the block or band, coefficient \
                                   stored where libjpeg stores it",
                        },
                        Anomaly::RefinementSize => WarningKind::RefinementSize,
                    };
                    lw.warnings.push(kind, at, lw.scan, Some(n));
                }
                result?;
                if br.overread() {
                    insufficient = true;
                    let end = br.end_offset();
                    let marker = br.pending_marker_code();
                    cut = Some((end, marker, n, 0));
                }
                continue;
            }
            // Bits past the end of the segment mean the data was cut short; a decoding error
            // caused by them is reported as such too.
            if br.overread() {
                return Err(JpegError::TruncatedScan {
                    offset: br.end_offset(),
                    mcus: done,
                    total,
                });
            }
            result?;
            done += 1;
        }
    }
    if let Some(lw) = lenient.as_mut() {
        report_cut(lw, cut.take());
    }
    Ok(())
}

fn internal() -> JpegError {
    JpegError::BadScanData {
        offset: 0,
        what: "internal: block outside the coefficient storage",
    }
}

/// Decodes the blocks of MCU (mx, my) (a single block for a single-component scan).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn decode_mcu<F>(
    layout: &FrameLayout,
    scan: &ScanHeader,
    storage: &mut [Vec<i16>],
    br: &mut BitReader<'_>,
    st: &mut ScanState,
    single: bool,
    mx: usize,
    my: usize,
    block: &mut F,
) -> Result<(), JpegError>
where
    F: FnMut(&mut BitReader<'_>, &mut ScanState, usize, &mut [i16; 64]) -> Result<(), JpegError>,
{
    if single {
        let sc = &scan.components[0];
        let c = &layout.components[sc.index];
        let o = (my * c.stride + mx) * 64;
        let blk = storage[sc.index]
            .get_mut(o..)
            .and_then(|s| s.first_chunk_mut::<64>())
            .ok_or_else(internal)?;
        return block(br, st, 0, blk);
    }
    for (si, sc) in scan.components.iter().enumerate() {
        let c = &layout.components[sc.index];
        for v in 0..c.v {
            for h in 0..c.h {
                let o = ((my * c.v + v) * c.stride + mx * c.h + h) * 64;
                let blk = storage[sc.index]
                    .get_mut(o..)
                    .and_then(|s| s.first_chunk_mut::<64>())
                    .ok_or_else(internal)?;
                block(br, st, si, blk)?;
            }
        }
    }
    Ok(())
}

/// Reports a segment cut short: where its data ended, the MCU that read past the end,
/// and the MCUs left unchanged after it (up to the restart where decoding resumed, or the
/// end of the scan).
fn report_cut(lw: &mut Lenient<'_>, cut: Option<(usize, Option<u8>, u64, u64)>) {
    if let Some((end, marker, mcu, skipped)) = cut {
        lw.warnings.push(
            WarningKind::PrematureEnd {
                marker,
                mcus_left: skipped,
            },
            end,
            lw.scan,
            Some(mcu),
        );
    }
}

/// libjpeg's `read_restart_marker` and `jpeg_resync_to_restart` before MCU `n`, expecting
/// RST`expected`: consumes the marker when it is the one expected; otherwise warns and
/// resynchronises (see the module documentation). Afterwards the reader either continues
/// after a consumed marker or stands at a pending one ([`BitReader::at_marker`]).
fn restart_lenient(
    br: &mut BitReader<'_>,
    expected: u8,
    lw: &mut Lenient<'_>,
    n: u64,
    reported_at: &mut Option<usize>,
) {
    let (mut code, at, skipped) = br.pending_marker();
    if skipped > 0 {
        lw.warnings.push(
            WarningKind::ExtraneousData {
                bytes: skipped,
                marker: Some(code).filter(|_| at < br.data_len()),
            },
            at,
            lw.scan,
            Some(n),
        );
    }
    if code == 0xD0 + expected {
        br.skip_pending_marker();
        return;
    }
    if *reported_at != Some(at) {
        *reported_at = Some(at);
        lw.warnings.push(
            WarningKind::BadRestart {
                expected,
                found: Some(code).filter(|_| at < br.data_len()),
            },
            at,
            lw.scan,
            Some(n),
        );
    }
    loop {
        // jpeg_resync_to_restart's actions: 1 discard the marker and go on, 2 scan to the
        // next marker and decide again, 3 leave the marker for a later restart.
        let action = if code < 0xC0 {
            2
        } else if !(0xD0..=0xD7).contains(&code) {
            3
        } else {
            let d = code - 0xD0;
            if d == (expected + 1) & 7 || d == (expected + 2) & 7 {
                3
            } else if d == (expected + 7) & 7 || d == (expected + 6) & 7 {
                2
            } else {
                1
            }
        };
        match action {
            1 => {
                br.skip_pending_marker();
                return;
            }
            2 => {
                br.skip_pending_marker();
                code = br.pending_marker().0;
            }
            _ => return,
        }
    }
}
