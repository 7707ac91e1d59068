//! The MCU loop of a scan with restart intervals (T.81 A.2, B.2.4.4, E.2.4, F.2.1.3,
//! G.1.2): interleaved scans visit MCUs of H x V blocks per component (A.2.3), single-
//! component scans visit the component's blocks one by one (A.2.2); every `Ri` MCUs the
//! entropy-coded segment ends with RSTn (n counting 0..7 modulo 8), the decoder's
//! predictions and end-of-band run are reset, and the bit reader restarts after the marker.

use super::bitreader::BitReader;
use super::error::JpegError;
use super::layout::FrameLayout;
use super::markers::ScanHeader;

/// State that a restart resets: DC predictions (F.2.1.3.1) and EOBRUN (G.1.2.2).
#[derive(Debug, Default, Clone, Copy)]
pub struct ScanState {
    /// DC prediction per scan component (the previous DC value, before any point transform).
    pub pred: [i32; 4],
    /// Blocks still to skip in the current end-of-band run.
    pub eobrun: u32,
}

/// Decodes the MCUs of one scan: `block(reader, state, scan component index, block)` is
/// called for every block in coding order. Ends with a [`JpegError::TruncatedScan`] when
/// the data runs out before the last MCU.
pub fn decode_mcus<F>(
    layout: &FrameLayout,
    scan: &ScanHeader,
    storage: &mut [Vec<i16>],
    br: &mut BitReader<'_>,
    restart_interval: u16,
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
    let internal = || JpegError::BadScanData {
        offset: 0,
        what: "internal: block outside the coefficient storage",
    };
    for my in 0..mcus_y {
        for mx in 0..mcus_x {
            if ri > 0 && left == 0 {
                let (found, at) = br.next_marker();
                if found != Some(0xD0 + next_rst) {
                    return Err(JpegError::BadRestart {
                        offset: at,
                        expected: next_rst,
                        found,
                    });
                }
                next_rst = (next_rst + 1) & 7;
                st = ScanState::default();
                left = ri;
            }
            left = left.saturating_sub(1);
            let result = if single {
                let sc = &scan.components[0];
                let c = &layout.components[sc.index];
                let o = (my * c.stride + mx) * 64;
                let blk = storage[sc.index]
                    .get_mut(o..)
                    .and_then(|s| s.first_chunk_mut::<64>())
                    .ok_or_else(internal)?;
                block(br, &mut st, 0, blk)
            } else {
                let mut r = Ok(());
                'mcu: for (si, sc) in scan.components.iter().enumerate() {
                    let c = &layout.components[sc.index];
                    for v in 0..c.v {
                        for h in 0..c.h {
                            let o = ((my * c.v + v) * c.stride + mx * c.h + h) * 64;
                            let blk = storage[sc.index]
                                .get_mut(o..)
                                .and_then(|s| s.first_chunk_mut::<64>())
                                .ok_or_else(internal)?;
                            r = block(br, &mut st, si, blk);
                            if r.is_err() {
                                break 'mcu;
                            }
                        }
                    }
                }
                r
            };
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
    Ok(())
}
