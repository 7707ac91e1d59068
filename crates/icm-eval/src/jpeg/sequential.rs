//! Decoding of a sequential (baseline or extended, Huffman) scan's blocks (T.81 F.2.2):
//! the DC difference (F.2.2.1) added to the prediction, then the AC coefficients as
//! run/size symbols with ZRL and EOB (F.2.2.2, Figure F.13), stored in natural order.
//!
//! With `L` (lenient decoding) corrupt data is decoded as libjpeg's `decode_mcu` decodes
//! it: an invalid code is symbol 0, and a run past coefficient 63 stores its value at 63.

use super::bitreader::{Anomaly, BitReader};
use super::error::JpegError;
use super::huffman::{receive_extend, HuffmanTable};
use super::zigzag::NATURAL;

/// Decodes one block into `blk` (natural order); `pred` is the component's DC prediction.
#[inline]
pub fn decode_block<const L: bool>(
    br: &mut BitReader<'_>,
    dc: &HuffmanTable,
    ac: &HuffmanTable,
    pred: &mut i32,
    blk: &mut [i16; 64],
) -> Result<(), JpegError> {
    let s = u32::from(dc.decode_as::<L>(br)?);
    let diff = receive_extend(br, s);
    *pred = pred.wrapping_add(diff);
    // libjpeg stores the (int) sum in a 16-bit JCOEF.
    blk[0] = *pred as i16;
    let mut k = 1usize;
    while k < 64 {
        br.ensure(32);
        let e = ac.peek_fast_ac(br);
        if e != 0 {
            // Code and value in one lookup (the common case).
            k += ((e >> 4) & 15) as usize;
            br.consume((e & 15) as u32);
            if k > 63 {
                return past_63::<L>(br, blk, e >> 8);
            }
            blk[NATURAL[k]] = e >> 8;
            k += 1;
            continue;
        }
        let rs = ac.decode_as::<L>(br)?;
        let r = usize::from(rs >> 4);
        let s = u32::from(rs & 15);
        if s != 0 {
            k += r;
            if k > 63 {
                if !L {
                    return past_63::<L>(br, blk, 0);
                }
                let v = receive_extend(br, s) as i16;
                return past_63::<L>(br, blk, v);
            }
            blk[NATURAL[k]] = receive_extend(br, s) as i16;
            k += 1;
        } else if r == 15 {
            k += 16; // ZRL
        } else {
            break; // EOB
        }
    }
    Ok(())
}

/// A run past coefficient 63: an error, or (lenient) the value stored at 63 and the block
/// ended, as libjpeg's extra `jpeg_natural_order` entries do.
#[cold]
fn past_63<const L: bool>(
    br: &mut BitReader<'_>,
    blk: &mut [i16; 64],
    v: i16,
) -> Result<(), JpegError> {
    if !L {
        return Err(JpegError::BadScanData {
            offset: br.offset(),
            what: "AC run past coefficient 63",
        });
    }
    br.note(Anomaly::RunPastBand);
    blk[63] = v;
    Ok(())
}
