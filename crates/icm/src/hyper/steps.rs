//! Scale indices at a quantisation step other than 1 (spec 9.4, version 1.3).
//!
//! With a step `D` (units of `2^-8`), `q = (y - mean) / D` has the scale `s / D`, and its
//! table is the number of thresholds `TD[k] = (T[k] * D) >> 8` below the requantised scale
//! `s`. The output stage ([`super::output`]) counts the thresholds of `D = 256`; this
//! module recounts the positions of a step map whose step differs, from the same
//! accumulators.

use super::network::HyperOutput;
use super::{HyperError, IntLayer};
use crate::container::UNIT_STEP;

/// `TD[k] = (T[k] * D) >> 8`, in i64 (spec 9.4; `|T[k] * D| < 2^43`, 9.5).
pub fn stepped_thresholds(thresholds: &[i32], step: u16) -> Vec<i64> {
    thresholds
        .iter()
        .map(|&t| (i64::from(t) * i64::from(step)) >> 8)
        .collect()
}

/// Replaces the scale index of every position whose step in `steps` (one per position of
/// the `out.height x out.width` grid) is not 256 by the count of its `TD` (spec 9.4).
/// `acc` are the final layer's accumulators (HWC, `last.cout` per position).
pub(super) fn apply_steps(
    out: &mut HyperOutput,
    acc: &[i32],
    last: &IntLayer,
    thresholds: &[i32],
    steps: &[u16],
) -> Result<(), HyperError> {
    let plane = out.height * out.width;
    if steps.len() != plane || acc.len() != plane * last.cout {
        return Err(HyperError::BadLayer {
            layer: 4,
            what: format!(
                "a step map of {} positions for a grid of {plane} (spec 5.4)",
                steps.len()
            ),
        });
    }
    // The palette of a tile has at most 255 steps: one list of thresholds for each.
    let mut tables: Vec<(u16, Vec<i64>)> = Vec::new();
    for (p, &d) in steps.iter().enumerate() {
        if d == UNIT_STEP {
            continue;
        }
        let t = match tables.iter().position(|(s, _)| *s == d) {
            Some(i) => i,
            None => {
                tables.push((d, stepped_thresholds(thresholds, d)));
                tables.len() - 1
            }
        };
        let td = &tables[t].1;
        let px = &acc[p * last.cout..(p + 1) * last.cout];
        for (c, &a) in px.iter().take(out.channels).enumerate() {
            let s = last.requantise(a, c);
            out.scale_index[c * plane + p] = td.partition_point(|&t| t < s) as u8;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_step_keeps_the_thresholds_and_others_floor() {
        let t = [-300, -1, 0, 1, 255, 1000, i32::MAX];
        assert_eq!(
            stepped_thresholds(&t, 256),
            t.iter().map(|&v| i64::from(v)).collect::<Vec<_>>()
        );
        // 512: twice; 384: 1.5 times, rounded towards minus infinity
        assert_eq!(stepped_thresholds(&[-3, 3, 5], 384), vec![-5, 4, 7]);
        assert_eq!(
            stepped_thresholds(&[i32::MIN, i32::MAX], 4096),
            vec![i64::from(i32::MIN) * 16, i64::from(i32::MAX) * 16]
        );
        // TD[k] < s exactly when T[k] * D < 256 * s, for every integer s
        for &tk in &t[..6] {
            for d in [1u16, 7, 255, 256, 257, 384, 4096] {
                let td = stepped_thresholds(&[tk], d)[0];
                for s in -2000i64..2000 {
                    assert_eq!(td < s, i64::from(tk) * i64::from(d) < 256 * s);
                }
            }
        }
    }
}
