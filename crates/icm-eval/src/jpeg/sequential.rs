//! Decoding of a sequential (baseline or extended, Huffman) scan's blocks (T.81 F.2.2):
//! the DC difference (F.2.2.1) added to the prediction, then the AC coefficients as
//! run/size symbols with ZRL and EOB (F.2.2.2, Figure F.13), stored in natural order.

use super::bitreader::BitReader;
use super::error::JpegError;
use super::huffman::{receive_extend, HuffmanTable};
use super::zigzag::NATURAL;

/// Decodes one block into `blk` (natural order); `pred` is the component's DC prediction.
#[inline]
pub fn decode_block(
    br: &mut BitReader<'_>,
    dc: &HuffmanTable,
    ac: &HuffmanTable,
    pred: &mut i32,
    blk: &mut [i16; 64],
) -> Result<(), JpegError> {
    let s = u32::from(dc.decode(br)?);
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
                return Err(JpegError::BadScanData {
                    offset: br.offset(),
                    what: "AC run past coefficient 63",
                });
            }
            blk[NATURAL[k]] = e >> 8;
            k += 1;
            continue;
        }
        let rs = ac.decode(br)?;
        let r = usize::from(rs >> 4);
        let s = u32::from(rs & 15);
        if s != 0 {
            k += r;
            if k > 63 {
                return Err(JpegError::BadScanData {
                    offset: br.offset(),
                    what: "AC run past coefficient 63",
                });
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
