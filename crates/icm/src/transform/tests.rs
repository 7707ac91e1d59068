//! Tests against naive reference implementations.

use super::*;

use crate::rng::Rng;

/// Random values and tensors for the reference comparisons.
trait Draw {
    fn uniform(&mut self, lo: f32, hi: f32) -> f32;
    fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32>;
    fn tensor(&mut self, c: usize, h: usize, w: usize) -> Tensor;
}

impl Draw for Rng {
    /// Uniform in `[lo, hi)`.
    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit_f32()
    }

    fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }

    fn tensor(&mut self, c: usize, h: usize, w: usize) -> Tensor {
        Tensor {
            c,
            h,
            w,
            data: self.vec(c * h * w, -1.0, 1.0),
        }
    }
}

fn random_conv(rng: &mut Rng, cin: usize, cout: usize, k: usize, stride: usize) -> Conv2d {
    Conv2d {
        cin,
        cout,
        k,
        stride,
        weight: rng.vec(cout * cin * k * k, -1.0, 1.0),
        bias: rng.vec(cout, -1.0, 1.0),
    }
}

fn random_convt(rng: &mut Rng, cin: usize, cout: usize, k: usize) -> ConvTranspose2d {
    ConvTranspose2d::new(
        cin,
        cout,
        k,
        rng.vec(cin * cout * k * k, -1.0, 1.0),
        rng.vec(cout, -1.0, 1.0),
    )
    .expect("valid layer")
}

fn random_gdn(rng: &mut Rng, c: usize, inverse: bool) -> Gdn {
    Gdn {
        c,
        beta: rng.vec(c, 0.5, 1.5),
        gamma: rng.vec(c * c, 0.0, 0.2),
        inverse,
    }
}

/// Direct nn.Conv2d, f64 accumulation.
fn ref_conv(l: &Conv2d, x: &Tensor) -> Tensor {
    let p = (l.k / 2) as isize;
    let hout = (x.h + 2 * (l.k / 2) - l.k) / l.stride + 1;
    let wout = (x.w + 2 * (l.k / 2) - l.k) / l.stride + 1;
    let mut y = Tensor::zeros(l.cout, hout, wout);
    for co in 0..l.cout {
        for oy in 0..hout {
            for ox in 0..wout {
                let mut acc = l.bias[co] as f64;
                for ci in 0..l.cin {
                    for ky in 0..l.k {
                        for kx in 0..l.k {
                            let iy = (oy * l.stride + ky) as isize - p;
                            let ix = (ox * l.stride + kx) as isize - p;
                            if iy < 0 || ix < 0 || iy >= x.h as isize || ix >= x.w as isize {
                                continue;
                            }
                            let w = l.weight[((co * l.cin + ci) * l.k + ky) * l.k + kx];
                            acc += w as f64 * x.get(ci, iy as usize, ix as usize) as f64;
                        }
                    }
                }
                y.set(co, oy, ox, acc as f32);
            }
        }
    }
    y
}

/// Direct nn.ConvTranspose2d (stride 2, padding k/2, output_padding 1) by scattering
/// every input pixel: output index `o = 2 * i + t - padding`.
fn ref_convt(l: &ConvTranspose2d, x: &Tensor) -> Tensor {
    let p = l.k / 2;
    let hout = (x.h - 1) * 2 + l.k + 1 - 2 * p;
    let wout = (x.w - 1) * 2 + l.k + 1 - 2 * p;
    let mut acc = vec![0f64; l.cout * hout * wout];
    for co in 0..l.cout {
        for v in &mut acc[co * hout * wout..(co + 1) * hout * wout] {
            *v = l.bias[co] as f64;
        }
    }
    for ci in 0..l.cin {
        for iy in 0..x.h {
            for ix in 0..x.w {
                let xv = x.get(ci, iy, ix) as f64;
                for co in 0..l.cout {
                    for ky in 0..l.k {
                        for kx in 0..l.k {
                            let oy = (2 * iy + ky) as isize - p as isize;
                            let ox = (2 * ix + kx) as isize - p as isize;
                            if oy < 0 || ox < 0 || oy >= hout as isize || ox >= wout as isize {
                                continue;
                            }
                            let w = l.weight[((ci * l.cout + co) * l.k + ky) * l.k + kx];
                            acc[(co * hout + oy as usize) * wout + ox as usize] += w as f64 * xv;
                        }
                    }
                }
            }
        }
    }
    Tensor {
        c: l.cout,
        h: hout,
        w: wout,
        data: acc.into_iter().map(|v| v as f32).collect(),
    }
}

/// Direct GDN / IGDN, f64.
fn ref_gdn(l: &Gdn, x: &Tensor) -> Tensor {
    let mut y = Tensor::zeros(x.c, x.h, x.w);
    for yy in 0..x.h {
        for xx in 0..x.w {
            for i in 0..l.c {
                let mut norm = l.beta[i] as f64;
                for j in 0..l.c {
                    let v = x.get(j, yy, xx) as f64;
                    norm += l.gamma[i * l.c + j] as f64 * v * v;
                }
                let xi = x.get(i, yy, xx) as f64;
                let v = if l.inverse {
                    xi * norm.sqrt()
                } else {
                    xi / norm.sqrt()
                };
                y.set(i, yy, xx, v as f32);
            }
        }
    }
    y
}

fn assert_close(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(
        (got.c, got.h, got.w),
        (want.c, want.h, want.w),
        "{what}: shape"
    );
    for (i, (a, b)) in got.data.iter().zip(&want.data).enumerate() {
        let tol = 1e-4 * b.abs().max(1.0);
        assert!((a - b).abs() <= tol, "{what}: index {i}: got {a}, want {b}");
    }
}

const SIZES: [(usize, usize); 5] = [(1, 1), (1, 7), (5, 3), (17, 33), (8, 8)];
const CHANNELS: [(usize, usize); 5] = [(1, 1), (3, 4), (5, 17), (16, 9), (2, 3)];

#[test]
fn conv_matches_reference() {
    let mut rng = Rng::from_seed(1);
    for &(h, w) in &SIZES {
        for k in 1..=5 {
            for stride in 1..=2 {
                for &(cin, cout) in &CHANNELS {
                    let l = random_conv(&mut rng, cin, cout, k, stride);
                    let x = rng.tensor(cin, h, w);
                    let what = format!("conv {cin}->{cout} k{k} s{stride} {h}x{w}");
                    let got = l.forward(&x).expect(&what);
                    assert_close(&got, &ref_conv(&l, &x), &what);
                }
            }
        }
    }
}

#[test]
fn conv_large_bands_match_reference() {
    // Enough rows and taps to force several memory-limited bands.
    let mut rng = Rng::from_seed(2);
    let l = random_conv(&mut rng, 48, 20, 5, 2);
    let x = rng.tensor(48, 61, 150);
    assert_close(
        &l.forward(&x).expect("conv"),
        &ref_conv(&l, &x),
        "conv large",
    );
}

#[test]
fn convt_matches_reference() {
    let mut rng = Rng::from_seed(3);
    for &(h, w) in &SIZES {
        for k in 1..=5 {
            for &(cin, cout) in &CHANNELS {
                let l = random_convt(&mut rng, cin, cout, k);
                let x = rng.tensor(cin, h, w);
                let what = format!("convt {cin}->{cout} k{k} {h}x{w}");
                let got = l.forward(&x).expect(&what);
                assert_close(&got, &ref_convt(&l, &x), &what);
            }
        }
    }
}

#[test]
fn convt_small_kernels_match_reference() {
    // The direct kernel (cout <= 4): portable and SIMD paths, odd widths around the
    // 16-column blocks, both kernel sizes of the codec and k = 1, 3.
    let mut rng = Rng::from_seed(5);
    for &(h, w) in &[(1, 1), (2, 15), (3, 16), (5, 17), (4, 33)] {
        for k in [1, 3, 5] {
            for cout in 1..=4 {
                let l = random_convt(&mut rng, 7, cout, k);
                let x = rng.tensor(7, h, w);
                let want = ref_convt(&l, &x);
                let what = format!("convt 7->{cout} k{k} {h}x{w}");
                assert_close(&l.forward(&x).expect(&what), &want, &what);
                let portable = l.forward_portable(&x).expect("small kernel");
                assert_close(&portable, &want, &format!("{what} portable"));
            }
        }
    }
}

#[test]
fn convt_large_matches_reference() {
    let mut rng = Rng::from_seed(4);
    for cout in [3, 24] {
        let l = random_convt(&mut rng, 40, cout, 5);
        let x = rng.tensor(40, 23, 37);
        assert_close(&l.forward(&x).expect("convt"), &ref_convt(&l, &x), "convt");
    }
}

#[test]
fn convt_output_is_twice_input() {
    let l = ConvTranspose2d::new(1, 1, 5, vec![0.0; 25], vec![0.0]).expect("layer");
    for (h, w) in [(1, 1), (3, 7), (32, 48)] {
        let y = l.forward(&Tensor::zeros(1, h, w)).expect("convt");
        assert_eq!((y.h, y.w), (2 * h, 2 * w));
    }
}

#[test]
fn convt_single_pixel_gives_centre_taps() {
    // 1x1 input of value 1, k = 5, padding 2: output index oy = 2 * iy + ky - padding
    // = ky - 2, so the 2x2 output (oy, ox in 0..2) receives taps ky, kx in 2..4, i.e.
    // y[oy][ox] = w[oy + 2][ox + 2] + bias. Taps 0, 1 fall at oy < 0 and tap 4 at
    // oy = 2, beyond the 2x2 output (output_padding = 1 only adds one row).
    let weight: Vec<f32> = (0..25).map(|i| i as f32).collect();
    let l = ConvTranspose2d::new(1, 1, 5, weight, vec![0.5]).expect("layer");
    let x = Tensor::new(1, 1, 1, vec![1.0]).expect("tensor");
    let y = l.forward(&x).expect("convt");
    assert_eq!((y.c, y.h, y.w), (1, 2, 2));
    assert_eq!(y.data, vec![12.5, 13.5, 17.5, 18.5]);
}

#[test]
fn conv_identity_tap() {
    // A 3x3 kernel with only the centre tap set copies the input (stride 1).
    let mut weight = vec![0.0; 9];
    weight[4] = 2.0;
    let l = Conv2d {
        cin: 1,
        cout: 1,
        k: 3,
        stride: 1,
        weight,
        bias: vec![1.0],
    };
    let x = Tensor::new(1, 2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).expect("tensor");
    let y = l.forward(&x).expect("conv");
    assert_eq!(y.data, vec![3.0, 5.0, 7.0, 9.0, 11.0, 13.0]);
}

#[test]
fn gdn_matches_reference() {
    let mut rng = Rng::from_seed(5);
    for &(h, w) in &SIZES {
        for c in [1, 3, 17, 64] {
            for inverse in [false, true] {
                let l = random_gdn(&mut rng, c, inverse);
                let x = rng.tensor(c, h, w);
                let what = format!("gdn c{c} inv{inverse} {h}x{w}");
                let got = l.forward(&x).expect(&what);
                assert_close(&got, &ref_gdn(&l, &x), &what);
            }
        }
    }
    // Many spatial bands.
    let l = random_gdn(&mut rng, 9, true);
    let x = rng.tensor(9, 40, 70);
    assert_close(&l.forward(&x).expect("gdn"), &ref_gdn(&l, &x), "gdn large");
}

fn small_synthesis(rng: &mut Rng) -> Sequential {
    Sequential {
        layers: vec![
            Layer::ConvTranspose(random_convt(rng, 6, 5, 5)),
            Layer::Gdn(random_gdn(rng, 5, true)),
            Layer::Relu,
            Layer::ConvTranspose(random_convt(rng, 5, 3, 5)),
        ],
    }
}

#[test]
fn sequential_matches_reference() {
    let mut rng = Rng::from_seed(6);
    let analysis = Sequential {
        layers: vec![
            Layer::Conv(random_conv(&mut rng, 3, 7, 5, 2)),
            Layer::Gdn(random_gdn(&mut rng, 7, false)),
            Layer::Relu,
            Layer::Conv(random_conv(&mut rng, 7, 5, 3, 1)),
            Layer::LeakyRelu(0.01),
            Layer::Conv(random_conv(&mut rng, 5, 6, 3, 2)),
        ],
    };
    let synthesis = small_synthesis(&mut rng);
    assert_eq!(analysis.validate(3), Ok(6));
    assert_eq!(synthesis.validate(6), Ok(3));
    let x = rng.tensor(3, 19, 26);
    let y = analysis.forward(&x).expect("analysis");
    let mut r = x.clone();
    for layer in &analysis.layers {
        r = match layer {
            Layer::Conv(l) => ref_conv(l, &r),
            Layer::Gdn(l) => ref_gdn(l, &r),
            Layer::Relu => Tensor {
                data: r.data.iter().map(|v| v.max(0.0)).collect(),
                ..r
            },
            Layer::LeakyRelu(slope) => Tensor {
                data: r
                    .data
                    .iter()
                    .map(|&v| if v < 0.0 { slope * v } else { v })
                    .collect(),
                ..r
            },
            Layer::ConvTranspose(l) => ref_convt(l, &r),
        };
    }
    assert_close(&y, &r, "analysis");
    let z = synthesis.forward(&y).expect("synthesis");
    assert_eq!((z.c, z.h, z.w), (3, 20, 28));
    assert_eq!(Sequential::default().forward(&x), Ok(x));
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let mut rng = Rng::from_seed(7);
    let net = small_synthesis(&mut rng);
    let x = rng.tensor(6, 21, 34);
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
            .install(|| net.forward(&x))
            .expect("forward")
    };
    let one = run(1);
    assert_eq!(one.data, run(3).data);
    assert_eq!(one.data, run(4).data);
}

#[test]
fn shape_errors_are_reported() {
    let mut rng = Rng::from_seed(8);
    let conv = random_conv(&mut rng, 3, 4, 3, 2);
    let x4 = rng.tensor(4, 5, 5);
    assert!(matches!(
        conv.forward(&x4),
        Err(TransformError::ChannelMismatch {
            expected: 3,
            got: 4,
            ..
        })
    ));

    let mut bad = conv.clone();
    bad.weight.pop();
    let x3 = rng.tensor(3, 5, 5);
    assert!(matches!(
        bad.forward(&x3),
        Err(TransformError::ParamLength {
            param: "weight",
            ..
        })
    ));
    let mut bad = conv.clone();
    bad.bias.push(0.0);
    assert!(matches!(
        bad.forward(&x3),
        Err(TransformError::ParamLength { param: "bias", .. })
    ));
    let mut bad = conv.clone();
    bad.stride = 0;
    assert!(matches!(
        bad.forward(&x3),
        Err(TransformError::InvalidConfig { .. })
    ));

    let mut torn = x3.clone();
    torn.data.pop();
    assert!(matches!(
        conv.forward(&torn),
        Err(TransformError::DataLength { .. })
    ));
    assert!(Tensor::new(2, 2, 2, vec![0.0; 7]).is_err());
    assert!(matches!(
        conv.forward(&Tensor::zeros(3, 0, 4)),
        Err(TransformError::EmptyInput { .. })
    ));

    let convt = random_convt(&mut rng, 3, 2, 5);
    assert!(convt.forward(&x4).is_err());
    assert!(matches!(
        ConvTranspose2d::new(3, 2, 5, vec![0.0; 3 * 2 * 25 + 1], vec![0.0; 2]),
        Err(TransformError::ParamLength {
            param: "weight",
            ..
        })
    ));
    assert!(matches!(
        ConvTranspose2d::new(3, 2, 5, vec![0.0; 3 * 2 * 25], vec![0.0; 3]),
        Err(TransformError::ParamLength { param: "bias", .. })
    ));
    assert!(matches!(
        ConvTranspose2d::new(3, 2, 0, Vec::new(), vec![0.0; 2]),
        Err(TransformError::InvalidConfig { .. })
    ));

    let gdn = random_gdn(&mut rng, 3, false);
    assert!(gdn.forward(&x4).is_err());
    let mut bad = gdn.clone();
    bad.gamma.pop();
    assert!(bad.forward(&x3).is_err());

    let net = Sequential {
        layers: vec![
            Layer::Conv(conv.clone()),
            Layer::Relu,
            Layer::Gdn(gdn.clone()),
        ],
    };
    assert!(matches!(
        net.validate(3),
        Err(TransformError::Layer { index: 2, .. })
    ));
    assert!(matches!(
        net.forward(&x3),
        Err(TransformError::Layer { index: 2, .. })
    ));
    assert!(matches!(
        net.validate(4),
        Err(TransformError::Layer { index: 0, .. })
    ));
}

/// `sum_i r_i f(x)_i` in f64.
fn weighted_sum(net: &Sequential, x: &Tensor, r: &[f32]) -> f64 {
    let y = net.forward(x).expect("forward");
    y.data
        .iter()
        .zip(r)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum()
}

/// Checks [`Differentiable::backward`] against central finite differences of
/// `L(x) = sum_i r_i f(x)_i` along three random directions: `<grad L, d>` must equal
/// `(L(x + eps d) - L(x - eps d)) / (2 eps)` within `rel` of `sum_i |grad_i d_i|`.
fn check_gradient(net: &Sequential, x: &Tensor, rng: &mut Rng, eps: f32, rel: f64, what: &str) {
    let diff = Differentiable::new(net).expect("adjoint");
    let (y, tape) = diff.forward(x).expect("forward");
    assert_eq!(y, net.forward(x).expect("forward"), "{what}: taped forward");
    let r = rng.vec(y.data.len(), -1.0, 1.0);
    let g = Tensor::new(y.c, y.h, y.w, r.clone()).expect("shape");
    let grad = diff.backward(&tape, g).expect("backward");
    assert_eq!((grad.c, grad.h, grad.w), (x.c, x.h, x.w), "{what}: shape");
    for _ in 0..3 {
        let d = rng.vec(x.data.len(), -1.0, 1.0);
        let shifted = |s: f32| {
            let data = x.data.iter().zip(&d).map(|(a, b)| a + s * b).collect();
            Tensor::new(x.c, x.h, x.w, data).expect("shape")
        };
        let numeric = (weighted_sum(net, &shifted(eps), &r)
            - weighted_sum(net, &shifted(-eps), &r))
            / (2.0 * f64::from(eps));
        let analytic: f64 = grad
            .data
            .iter()
            .zip(&d)
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum();
        // Against the sum of magnitudes, so that cancellation does not leave rounding alone.
        let scale: f64 = grad
            .data
            .iter()
            .zip(&d)
            .map(|(&a, &b)| (f64::from(a) * f64::from(b)).abs())
            .sum();
        assert!(
            (numeric - analytic).abs() <= rel * scale,
            "{what}: analytic {analytic}, finite differences {numeric}"
        );
    }
}

#[test]
fn layer_gradients_match_finite_differences() {
    let mut rng = Rng::from_seed(21);
    let one = |l: Layer| Sequential { layers: vec![l] };
    for (cin, cout, k) in [(4, 3, 5), (3, 7, 3), (12, 10, 5)] {
        let net = one(Layer::ConvTranspose(random_convt(&mut rng, cin, cout, k)));
        let x = rng.tensor(cin, 5, 7);
        check_gradient(&net, &x, &mut rng, 1e-2, 1e-3, "convt");
    }
    for k in [1, 3, 5] {
        let net = one(Layer::Conv(random_conv(&mut rng, 5, 4, k, 1)));
        let x = rng.tensor(5, 9, 6);
        check_gradient(&net, &x, &mut rng, 1e-2, 1e-3, "conv stride 1");
    }
    for inverse in [true, false] {
        for (c, h, w) in [(5, 6, 7), (9, 40, 70)] {
            let net = one(Layer::Gdn(random_gdn(&mut rng, c, inverse)));
            let x = rng.tensor(c, h, w);
            check_gradient(&net, &x, &mut rng, 1e-2, 1e-3, "gdn");
        }
    }
}

#[test]
fn synthesis_gradient_matches_finite_differences() {
    let mut rng = Rng::from_seed(22);
    let mut net = small_synthesis(&mut rng);
    let x = rng.tensor(6, 4, 5);
    // ReLU kinks crossed by the finite difference step cost a little accuracy.
    check_gradient(&net, &x, &mut rng, 1e-3, 2e-2, "synthesis");
    net.layers[2] = Layer::LeakyRelu(0.01);
    check_gradient(&net, &x, &mut rng, 1e-3, 2e-2, "synthesis, LeakyReLU");
}

#[test]
fn strided_convolution_has_no_gradient() {
    let mut rng = Rng::from_seed(23);
    let net = Sequential {
        layers: vec![Layer::Relu, Layer::Conv(random_conv(&mut rng, 3, 4, 5, 2))],
    };
    let e = Differentiable::new(&net).expect_err("strided");
    assert!(matches!(e, TransformError::Layer { index: 1, .. }), "{e}");
}
