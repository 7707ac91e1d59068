//! Benchmarks of the floating-point transforms at the shapes of a 768x512 image.

use criterion::{criterion_group, criterion_main, Criterion};
use icm::rng::Rng;
use icm::transform::{Conv2d, ConvTranspose2d, Differentiable, Gdn, Layer, Sequential, Tensor};

/// Deterministic values in `[-scale, scale)`.
fn random_vec(seed: &mut u64, n: usize, scale: f32) -> Vec<f32> {
    let mut rng = Rng(*seed);
    let v = (0..n)
        .map(|_| (2.0 * rng.unit_f32() - 1.0) * scale)
        .collect();
    *seed = rng.0;
    v
}

fn gdn(seed: &mut u64, c: usize, inverse: bool) -> Layer {
    let gamma = random_vec(seed, c * c, 0.1 / c as f32)
        .into_iter()
        .map(f32::abs)
        .collect();
    Layer::Gdn(Gdn {
        c,
        beta: vec![1.0; c],
        gamma,
        inverse,
    })
}

/// g_s: ConvT(192->128) IGDN ConvT(128->96) IGDN ConvT(96->64) IGDN ConvT(64->3).
fn synthesis(seed: &mut u64) -> Sequential {
    let chans = [192, 128, 96, 64, 3];
    let mut layers = Vec::new();
    for (i, pair) in chans.windows(2).enumerate() {
        let (cin, cout) = (pair[0], pair[1]);
        let scale = 1.0 / ((cin * 25) as f32).sqrt();
        layers.push(Layer::ConvTranspose(
            ConvTranspose2d::new(
                cin,
                cout,
                5,
                random_vec(seed, cin * cout * 25, scale),
                random_vec(seed, cout, 0.1),
            )
            .expect("valid layer"),
        ));
        if i + 2 < chans.len() {
            layers.push(gdn(seed, cout, true));
        }
    }
    Sequential { layers }
}

/// g_a: Conv(3->64) GDN Conv(64->96) GDN Conv(96->128) GDN Conv(128->192), stride 2.
fn analysis(seed: &mut u64) -> Sequential {
    let chans = [3, 64, 96, 128, 192];
    let mut layers = Vec::new();
    for (i, pair) in chans.windows(2).enumerate() {
        let (cin, cout) = (pair[0], pair[1]);
        let scale = 1.0 / ((cin * 25) as f32).sqrt();
        layers.push(Layer::Conv(Conv2d {
            cin,
            cout,
            k: 5,
            stride: 2,
            weight: random_vec(seed, cout * cin * 25, scale),
            bias: random_vec(seed, cout, 0.1),
        }));
        if i + 2 < chans.len() {
            layers.push(gdn(seed, cout, false));
        }
    }
    Sequential { layers }
}

fn bench(c: &mut Criterion) {
    let mut seed = 0x1234_5678_9abc_def1u64;
    let g_s = synthesis(&mut seed);
    let y = Tensor {
        c: 192,
        h: 32,
        w: 48,
        data: random_vec(&mut seed, 192 * 32 * 48, 4.0),
    };
    let g_a = analysis(&mut seed);
    let x = Tensor {
        c: 3,
        h: 512,
        w: 768,
        data: random_vec(&mut seed, 3 * 512 * 768, 1.0),
    };
    let mut group = c.benchmark_group("transform");
    group.sample_size(10);
    group.bench_function("g_s_192x32x48", |b| b.iter(|| g_s.forward(&y)));
    group.bench_function("g_a_3x512x768", |b| b.iter(|| g_a.forward(&x)));
    // One step of the encoder's rate-distortion search (spec 12.6): g_s keeping its
    // activations, then the gradient with respect to y^.
    let diff = Differentiable::new(&g_s).expect("g_s has a gradient");
    group.bench_function("g_s_forward_backward_192x32x48", |b| {
        b.iter(|| {
            let (out, tape) = diff.forward(&y).expect("forward");
            diff.backward(&tape, out).expect("backward")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
