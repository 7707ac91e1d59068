//! Decoding of progressive scans' blocks (T.81 G.1.2): DC first and refinement scans
//! (G.1.2.1), AC first scans with end-of-band runs (G.1.2.2, Figure G.3 EOBRUN) and AC
//! refinement scans (G.1.2.3), following libjpeg's `jdphuff.c` so that the coefficients
//! agree with its `jpeg_read_coefficients`. A point transform Al stores `value << Al`.
//!
//! With `L` (lenient decoding) corrupt data is decoded as libjpeg decodes it: an invalid
//! code is symbol 0, and a run past the end of the band stores its coefficient where
//! libjpeg's `jpeg_natural_order` (with 16 extra entries 63) puts it.

use super::bitreader::{Anomaly, BitReader};
use super::error::JpegError;
use super::huffman::{receive_extend, HuffmanTable};
use super::restart::ScanState;
use super::zigzag::{NATURAL, NATURAL_EXT};

/// DC first scan (G.1.2.1): a DC difference, added to the prediction, shifted left by Al.
#[inline]
pub fn dc_first<const L: bool>(
    br: &mut BitReader<'_>,
    dc: &HuffmanTable,
    pred: &mut i32,
    al: u32,
    blk: &mut [i16; 64],
) -> Result<(), JpegError> {
    let s = u32::from(dc.decode_as::<L>(br)?);
    let diff = receive_extend(br, s);
    *pred = pred.wrapping_add(diff);
    blk[0] = pred.wrapping_shl(al) as i16;
    Ok(())
}

/// DC refinement scan (G.1.2.1): one raw bit, OR-ed in at bit Al.
#[inline]
pub fn dc_refine(br: &mut BitReader<'_>, al: u32, blk: &mut [i16; 64]) {
    if br.bit() {
        blk[0] |= (1i32 << al) as i16;
    }
}

fn past_band(br: &BitReader<'_>) -> JpegError {
    JpegError::BadScanData {
        offset: br.offset(),
        what: "run past the end of the spectral band",
    }
}

/// Lenient: a coefficient whose run went past the band, at zig-zag index `k` (at most
/// 63 + 15), stored where libjpeg stores it.
#[cold]
fn store_past_band(br: &mut BitReader<'_>, blk: &mut [i16; 64], k: usize, v: i16) {
    br.note(Anomaly::RunPastBand);
    blk[NATURAL_EXT[k.min(79)]] = v;
}

/// The length of an end-of-band run EOBn (G.1.2.2): 2^r plus r raw bits.
#[inline]
fn eob_run(br: &mut BitReader<'_>, r: u32) -> u32 {
    (1u32 << r) + br.bits(r)
}

/// AC first scan (G.1.2.2) over the band `ss..=se` of one block.
#[inline]
pub fn ac_first<const L: bool>(
    br: &mut BitReader<'_>,
    ac: &HuffmanTable,
    st: &mut ScanState,
    (ss, se, al): (usize, usize, u32),
    blk: &mut [i16; 64],
) -> Result<(), JpegError> {
    if st.eobrun > 0 {
        st.eobrun -= 1;
        return Ok(());
    }
    let mut k = ss;
    while k <= se {
        br.ensure(32);
        let e = ac.peek_fast_ac(br);
        if e != 0 {
            // Code and value in one lookup.
            k += ((e >> 4) & 15) as usize;
            br.consume((e & 15) as u32);
            if k > se {
                if !L {
                    return Err(past_band(br));
                }
                store_past_band(br, blk, k, i32::from(e >> 8).wrapping_shl(al) as i16);
                return Ok(());
            }
            blk[NATURAL[k]] = i32::from(e >> 8).wrapping_shl(al) as i16;
            k += 1;
            continue;
        }
        let rs = ac.decode_as::<L>(br)?;
        let r = u32::from(rs >> 4);
        let s = u32::from(rs & 15);
        if s != 0 {
            k += r as usize;
            if k > se {
                if !L {
                    return Err(past_band(br));
                }
                let v = receive_extend(br, s).wrapping_shl(al) as i16;
                store_past_band(br, blk, k, v);
                return Ok(());
            }
            blk[NATURAL[k]] = receive_extend(br, s).wrapping_shl(al) as i16;
        } else if r == 15 {
            k += 15; // ZRL: 16 zeros with the increment below
        } else {
            st.eobrun = eob_run(br, r) - 1;
            break;
        }
        k += 1;
    }
    Ok(())
}

/// Correction bit of an already non-zero coefficient (G.1.2.3): if set and bit Al of the
/// magnitude is still 0, moves the coefficient away from zero by 2^Al.
#[inline(always)]
fn refine(br: &mut BitReader<'_>, c: &mut i16, p1: i32) {
    if br.bit() && (i32::from(*c) & p1) == 0 {
        let v = i32::from(*c);
        *c = if v >= 0 { v + p1 } else { v - p1 } as i16;
    }
}

/// AC refinement scan (G.1.2.3) over the band `ss..=se` of one block.
#[inline]
pub fn ac_refine<const L: bool>(
    br: &mut BitReader<'_>,
    ac: &HuffmanTable,
    st: &mut ScanState,
    (ss, se, al): (usize, usize, u32),
    blk: &mut [i16; 64],
) -> Result<(), JpegError> {
    let p1 = 1i32 << al;
    let mut k = ss;
    if st.eobrun == 0 {
        while k <= se {
            let rs = ac.decode_as::<L>(br)?;
            let mut r = i32::from(rs >> 4);
            let s = rs & 15;
            let mut value = 0i32;
            if s != 0 {
                // s must be 1 (libjpeg warns otherwise and goes on); the sign bit follows.
                if L && s != 1 {
                    br.note(Anomaly::RefinementSize);
                }
                value = if br.bit() { p1 } else { -p1 };
            } else if r != 15 {
                st.eobrun = eob_run(br, r as u32);
                break;
            }
            // Skip r zero coefficients (refining the non-zero ones met on the way); a new
            // coefficient goes in the next zero position.
            while k <= se {
                let c = &mut blk[NATURAL[k]];
                if *c != 0 {
                    refine(br, c, p1);
                } else {
                    r -= 1;
                    if r < 0 {
                        break;
                    }
                }
                k += 1;
            }
            if value != 0 {
                if k > se {
                    if !L {
                        return Err(past_band(br));
                    }
                    // k is se + 1 here: libjpeg stores the new coefficient there, and the
                    // block ends.
                    store_past_band(br, blk, k, value as i16);
                } else {
                    blk[NATURAL[k]] = value as i16;
                }
            }
            k += 1;
        }
    }
    if st.eobrun > 0 {
        // Inside an end-of-band run: only correction bits of the non-zero coefficients.
        while k <= se {
            let c = &mut blk[NATURAL[k]];
            if *c != 0 {
                refine(br, c, p1);
            }
            k += 1;
        }
        st.eobrun -= 1;
    }
    Ok(())
}
