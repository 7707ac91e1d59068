//! Seeded CompressAI-shaped state dicts: the tensors `ScaleHyperprior(N, M)` and
//! `MeanScaleHyperprior(N, M)` have, with deterministic pseudo-random values, for tests and
//! conformance vectors (no PyTorch needed). The values are not CompressAI's initialisation:
//! they are chosen so that the latents are varied (non-zero medians, negative h_s inputs,
//! escapes), which is what a conformance vector has to exercise.

use crate::compressai::{CompressaiArch, StateDict};
use crate::torch::{Tensor, TensorData};
use icm::rng::Rng;

fn tensor(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
    Tensor {
        shape,
        data: TensorData::F32(data),
    }
}

/// Uniform weights with bound `gain / sqrt(fan_in)`.
fn weights(rng: &mut Rng, shape: Vec<usize>, fan_in: usize, gain: f32) -> Tensor {
    let bound = gain / (fan_in as f32).sqrt();
    let n = shape.iter().product();
    let data = (0..n)
        .map(|_| (2.0 * rng.unit_f32() - 1.0) * bound)
        .collect();
    tensor(shape, data)
}

fn uniform(rng: &mut Rng, shape: Vec<usize>, lo: f32, hi: f32) -> Tensor {
    let n = shape.iter().product();
    tensor(
        shape,
        (0..n).map(|_| lo + (hi - lo) * rng.unit_f32()).collect(),
    )
}

/// CompressAI's stored (reparametrised) GDN parameters for `beta = 1` and `gamma = 0.1 I`
/// plus a small positive perturbation: `sqrt(max(x + p, p))` with `p = 2^-36`.
fn gdn(rng: &mut Rng, state: &mut StateDict, prefix: &str, c: usize) {
    let p = 2f32.powi(-36);
    let store = |x: f32| (x + p).max(p).sqrt();
    let beta = (0..c).map(|_| store(1.0 + 0.2 * rng.unit_f32())).collect();
    let gamma = (0..c * c)
        .map(|j| {
            let base = if j / c == j % c { 0.1 } else { 0.0 };
            store(base + 0.01 * rng.unit_f32())
        })
        .collect();
    state.insert(format!("{prefix}.beta"), tensor(vec![c], beta));
    state.insert(format!("{prefix}.gamma"), tensor(vec![c, c], gamma));
}

/// A seeded state dict of `arch` with `n` (N) and `m` (M) channels. It has no quantised
/// CDFs, so an import rebuilds the tables from the entropy bottleneck's density (spec 12.5).
pub fn seeded_state_dict(arch: CompressaiArch, n: usize, m: usize, seed: u64) -> StateDict {
    let mut rng = Rng::from_seed(seed);
    let r = &mut rng;
    let mut s = StateDict::new();
    let conv = |s: &mut StateDict,
                r: &mut Rng,
                name: &str,
                cout: usize,
                cin: usize,
                k: usize,
                gain: f32| {
        s.insert(
            format!("{name}.weight"),
            weights(r, vec![cout, cin, k, k], cin * k * k, gain),
        );
        s.insert(format!("{name}.bias"), uniform(r, vec![cout], -0.1, 0.1));
    };
    // g_a: conv(3, N), GDN, conv(N, N), GDN, conv(N, N), GDN, conv(N, M).
    for (i, (cout, cin)) in [(n, 3), (n, n), (n, n), (m, n)].into_iter().enumerate() {
        conv(&mut s, r, &format!("g_a.{}", 2 * i), cout, cin, 5, 6.0);
    }
    for i in [1, 3, 5] {
        gdn(r, &mut s, &format!("g_a.{i}"), n);
    }
    // g_s: deconv(M, N), IGDN, deconv(N, N), IGDN, deconv(N, N), IGDN, deconv(N, 3); the
    // weights of a transposed convolution are [Cin, Cout, 5, 5].
    for (i, (cin, cout)) in [(m, n), (n, n), (n, n), (n, 3)].into_iter().enumerate() {
        let name = format!("g_s.{}", 2 * i);
        s.insert(
            format!("{name}.weight"),
            weights(r, vec![cin, cout, 5, 5], cin * 4, 1.0),
        );
        s.insert(format!("{name}.bias"), uniform(r, vec![cout], -0.1, 0.1));
    }
    for i in [1, 3, 5] {
        gdn(r, &mut s, &format!("g_s.{i}"), n);
    }
    // h_a: conv(M, N, 3, 1), act, conv(N, N), act, conv(N, N).
    conv(&mut s, r, "h_a.0", n, m, 3, 2.0);
    conv(&mut s, r, "h_a.2", n, n, 5, 2.0);
    conv(&mut s, r, "h_a.4", n, n, 5, 2.0);
    // h_s.
    let (c1, c2, c4) = match arch {
        CompressaiArch::Bmshj2018Hyperprior => (n, n, m),
        CompressaiArch::Mbt2018Mean => (m, m * 3 / 2, 2 * m),
    };
    for (name, cin, cout) in [("h_s.0", n, c1), ("h_s.2", c1, c2)] {
        s.insert(
            format!("{name}.weight"),
            weights(r, vec![cin, cout, 5, 5], cin * 4, 2.0),
        );
        s.insert(format!("{name}.bias"), uniform(r, vec![cout], -0.5, 0.5));
    }
    conv(&mut s, r, "h_s.4", c4, c2, 3, 1.5);
    // Entropy bottleneck: CompressAI's filters (3, 3, 3, 3) and init_scale 10, medians
    // moved off 0.
    let filters = [1usize, 3, 3, 3, 3, 1];
    for i in 0..5 {
        let (fout, fin) = (filters[i + 1], filters[i]);
        let init = ((1.0 / 10f64.powf(0.2) / fout as f64).exp_m1()).ln() as f32;
        s.insert(
            format!("entropy_bottleneck.matrices.{i}"),
            tensor(vec![n, fout, fin], vec![init; n * fout * fin]),
        );
        s.insert(
            format!("entropy_bottleneck.biases.{i}"),
            uniform(r, vec![n, fout, 1], -0.5, 0.5),
        );
        if i < 4 {
            s.insert(
                format!("entropy_bottleneck.factors.{i}"),
                uniform(r, vec![n, fout, 1], -0.1, 0.1),
            );
        }
    }
    let mut quantiles = Vec::with_capacity(3 * n);
    for _ in 0..n {
        let median = 4.0 * r.unit_f32() - 2.0;
        quantiles.extend([median - 6.0, median, median + 6.0]);
    }
    s.insert(
        "entropy_bottleneck.quantiles".into(),
        tensor(vec![n, 1, 3], quantiles),
    );
    s
}
