//! Bjøntegaard-delta figures between two rate-quality curves.
//!
//! The definitions are those of the PyPI package `bjontegaard` (1.3, FAU Erlangen), which
//! in turn follows VCEG-M33 (cubic) and the JVET/MPEG common-test-condition spreadsheets
//! (piecewise cubic):
//!
//! * rates enter as `log10(rate)`;
//! * **BD-rate**: log-rate is interpolated as a function of quality for each curve, the
//!   difference test − anchor is averaged over the overlap of the two quality ranges
//!   (exact integral of the interpolants divided by the width), and reported as
//!   `(10^mean − 1) · 100` percent;
//! * **BD-metric** (BD-PSNR for PSNR): quality is interpolated as a function of
//!   log-rate and the difference test − anchor averaged over the overlap of the two
//!   log-rate ranges.
//!
//! Interpolation [`Method`]s: [`Method::Pchip`] (`scipy.interpolate.PchipInterpolator`:
//! Fritsch–Carlson monotone slopes as weighted harmonic means, the one-sided three-point
//! end slopes of Moler's `pchiptx`), [`Method::Akima`] (`scipy.interpolate.
//! Akima1DInterpolator`, method `"akima"`, linear for two points) and [`Method::Cubic`]
//! (least-squares cubic polynomial, `numpy.polyfit(x, y, 3)`, integrated exactly).
//!
//! Differences from the package, all in input handling: points may come in any order (they
//! are sorted by rate; the package requires sorted input), quality may decrease with rate
//! (a distortion such as MSE; the package asserts increasing curves), and everything the
//! package answers with NaN or an exception (no overlap, too few points, duplicate rates,
//! non-finite values) is a [`BdError`]. The cubic fit is made in a centred, scaled
//! variable with a QR factorisation rather than numpy's raw powers: the same polynomial,
//! closer to exact arithmetic (numpy's rounding is up to ~1e-9 relative on small deltas).

use std::fmt;
use std::str::FromStr;

/// Interpolation method of the Bjøntegaard delta.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Method {
    /// Piecewise cubic Hermite interpolation with monotone (Fritsch–Carlson) slopes, as
    /// `scipy.interpolate.PchipInterpolator`; at least 2 points.
    #[default]
    Pchip,
    /// Akima's piecewise cubic, as `scipy.interpolate.Akima1DInterpolator`; at least 2
    /// points (2 points: linear).
    Akima,
    /// VCEG-M33: least-squares 3rd-order polynomial; at least 4 points.
    Cubic,
}

impl Method {
    /// Name as used on the command line and by the `bjontegaard` package.
    pub fn name(self) -> &'static str {
        match self {
            Method::Pchip => "pchip",
            Method::Akima => "akima",
            Method::Cubic => "cubic",
        }
    }

    /// Fewest points per curve the method accepts.
    pub fn min_points(self) -> usize {
        match self {
            Method::Pchip | Method::Akima => 2,
            Method::Cubic => 4,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = BdError;

    fn from_str(s: &str) -> Result<Self, BdError> {
        match s {
            "pchip" => Ok(Method::Pchip),
            "akima" => Ok(Method::Akima),
            "cubic" => Ok(Method::Cubic),
            _ => Err(BdError::UnknownMethod(s.to_string())),
        }
    }
}

/// Which of the two curves an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The reference curve.
    Anchor,
    /// The curve under test.
    Test,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Anchor => "anchor",
            Side::Test => "test",
        })
    }
}

/// Why a curve or a Bjøntegaard delta could not be computed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BdError {
    /// Rates and qualities differ in number.
    #[error("{rates} rates but {qualities} quality values")]
    LengthMismatch {
        /// Number of rates.
        rates: usize,
        /// Number of quality values.
        qualities: usize,
    },
    /// A rate or quality is NaN or infinite.
    #[error("point {index} (rate {rate}, quality {quality}) is not finite")]
    NotFinite {
        /// Index in the input order.
        index: usize,
        /// The rate.
        rate: f64,
        /// The quality.
        quality: f64,
    },
    /// A rate is zero or negative (its logarithm is needed).
    #[error("point {index} has rate {rate}: rates must be positive")]
    NonPositiveRate {
        /// Index in the input order.
        index: usize,
        /// The rate.
        rate: f64,
    },
    /// Two points have the same rate.
    #[error("two points have the same rate {rate}")]
    DuplicateRate {
        /// The repeated rate.
        rate: f64,
    },
    /// A curve has fewer points than the method needs.
    #[error("{side} curve has {points} points; method {method} needs at least {needed}")]
    TooFewPoints {
        /// Which curve.
        side: Side,
        /// Its number of points.
        points: usize,
        /// The method.
        method: Method,
        /// The minimum for the method.
        needed: usize,
    },
    /// Quality does not change monotonically with rate, so log-rate is not a function of
    /// quality for a piecewise interpolant.
    #[error(
        "{side} curve: quality is not strictly monotone in rate (sorted by rate); \
         method {method} needs a monotone curve (cubic fits any)"
    )]
    NotMonotone {
        /// Which curve.
        side: Side,
        /// The method.
        method: Method,
    },
    /// The least-squares cubic is not determined (fewer than 4 distinct abscissae).
    #[error("{side} curve: cubic fit is singular (fewer than 4 distinct {axis} values)")]
    Singular {
        /// Which curve.
        side: Side,
        /// The abscissa: `quality` or `log-rate`.
        axis: &'static str,
    },
    /// The two curves' ranges do not overlap on the axis integrated over.
    #[error(
        "the curves do not overlap in {axis}: anchor covers [{anchor_lo}, {anchor_hi}], \
         test [{test_lo}, {test_hi}]"
    )]
    NoOverlap {
        /// `quality` (BD-rate) or `rate` (BD-metric).
        axis: &'static str,
        /// Anchor range start.
        anchor_lo: f64,
        /// Anchor range end.
        anchor_hi: f64,
        /// Test range start.
        test_lo: f64,
        /// Test range end.
        test_hi: f64,
    },
    /// An interpolation method name that is not `pchip`, `akima` or `cubic`.
    #[error("unknown method {0:?} (expected pchip, akima or cubic)")]
    UnknownMethod(String),
}

/// A rate-quality curve: points sorted by increasing rate, all finite, rates positive and
/// distinct.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    rate: Vec<f64>,
    quality: Vec<f64>,
}

impl Curve {
    /// Builds a curve from rates and quality values given in any order (pairs by index).
    pub fn new(rates: &[f64], qualities: &[f64]) -> Result<Curve, BdError> {
        if rates.len() != qualities.len() {
            return Err(BdError::LengthMismatch {
                rates: rates.len(),
                qualities: qualities.len(),
            });
        }
        for (index, (&rate, &quality)) in rates.iter().zip(qualities).enumerate() {
            if !rate.is_finite() || !quality.is_finite() {
                return Err(BdError::NotFinite {
                    index,
                    rate,
                    quality,
                });
            }
            if rate <= 0.0 {
                return Err(BdError::NonPositiveRate { index, rate });
            }
        }
        let mut pts: Vec<(f64, f64)> = rates
            .iter()
            .copied()
            .zip(qualities.iter().copied())
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        if let Some(w) = pts.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(BdError::DuplicateRate { rate: w[0].0 });
        }
        Ok(Curve {
            rate: pts.iter().map(|p| p.0).collect(),
            quality: pts.iter().map(|p| p.1).collect(),
        })
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.rate.len()
    }

    /// Whether the curve has no points.
    pub fn is_empty(&self) -> bool {
        self.rate.is_empty()
    }

    /// Rates, increasing.
    pub fn rates(&self) -> &[f64] {
        &self.rate
    }

    /// Quality values, in the order of [`Curve::rates`].
    pub fn qualities(&self) -> &[f64] {
        &self.quality
    }

    /// The operating points on the upper envelope: sorted by rate, a point is kept when
    /// its quality is above that of every cheaper point, i.e. no cheaper point does at
    /// least as well. Task-accuracy curves measured on small sets are often not monotone
    /// (one image more or less detected); the envelope is the best quality reachable at
    /// each rate, a monotone curve the pchip and akima methods accept. Returns the
    /// envelope and the points left out, as `(rate, quality)`.
    pub fn upper_envelope(&self) -> (Curve, Vec<(f64, f64)>) {
        let mut kept = Curve {
            rate: Vec::new(),
            quality: Vec::new(),
        };
        let mut dropped = Vec::new();
        for (&r, &q) in self.rate.iter().zip(&self.quality) {
            if kept.quality.last().is_none_or(|&best| q > best) {
                kept.rate.push(r);
                kept.quality.push(q);
            } else {
                dropped.push((r, q));
            }
        }
        (kept, dropped)
    }

    fn log_rates(&self) -> Vec<f64> {
        self.rate.iter().map(|r| r.log10()).collect()
    }
}

/// Both Bjøntegaard figures of a test curve against an anchor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BdResult {
    /// BD-rate in percent (negative: the test needs less rate for the same quality).
    pub bd_rate_percent: f64,
    /// BD-metric in units of the quality (positive: the test has higher quality at the
    /// same rate).
    pub bd_metric: f64,
}

/// BD-rate (percent) and BD-metric of `test` against `anchor`.
pub fn bd(anchor: &Curve, test: &Curve, method: Method) -> Result<BdResult, BdError> {
    Ok(BdResult {
        bd_rate_percent: bd_rate(anchor, test, method)?,
        bd_metric: bd_metric(anchor, test, method)?,
    })
}

/// BD-rate in percent: `(10^m − 1) · 100` with `m` the mean of
/// `log10(rate_test(q)) − log10(rate_anchor(q))` over the overlap of the quality ranges.
pub fn bd_rate(anchor: &Curve, test: &Curve, method: Method) -> Result<f64, BdError> {
    check_points(anchor, test, method)?;
    // x = quality (increasing; reversed for a quality that falls with rate), y = log10 rate.
    let xy = |c: &Curve, side: Side| -> Result<(Vec<f64>, Vec<f64>), BdError> {
        let mut x = c.quality.clone();
        let mut y = c.log_rates();
        if method != Method::Cubic {
            let up = x.windows(2).all(|w| w[1] > w[0]);
            let down = x.windows(2).all(|w| w[1] < w[0]);
            if down && !up {
                x.reverse();
                y.reverse();
            } else if !up {
                return Err(BdError::NotMonotone { side, method });
            }
        }
        Ok((x, y))
    };
    let (xa, ya) = xy(anchor, Side::Anchor)?;
    let (xt, yt) = xy(test, Side::Test)?;
    let mean = mean_difference((&xa, &ya), (&xt, &yt), method, "quality", |v| v)?;
    Ok((mean * std::f64::consts::LN_10).exp_m1() * 100.0)
}

/// BD-metric: mean of `quality_test(r) − quality_anchor(r)` over the overlap of the
/// log10-rate ranges.
pub fn bd_metric(anchor: &Curve, test: &Curve, method: Method) -> Result<f64, BdError> {
    check_points(anchor, test, method)?;
    let xa = anchor.log_rates();
    let xt = test.log_rates();
    mean_difference(
        (&xa, &anchor.quality),
        (&xt, &test.quality),
        method,
        "rate",
        |v| 10f64.powf(v),
    )
}

fn check_points(anchor: &Curve, test: &Curve, method: Method) -> Result<(), BdError> {
    for (c, side) in [(anchor, Side::Anchor), (test, Side::Test)] {
        if c.len() < method.min_points() {
            return Err(BdError::TooFewPoints {
                side,
                points: c.len(),
                method,
                needed: method.min_points(),
            });
        }
    }
    Ok(())
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// Mean of test − anchor over the overlap of the abscissa ranges. `shown` maps abscissae
/// back to the user's unit for the no-overlap message.
fn mean_difference(
    anchor: (&[f64], &[f64]),
    test: (&[f64], &[f64]),
    method: Method,
    axis: &'static str,
    shown: fn(f64) -> f64,
) -> Result<f64, BdError> {
    let (alo, ahi) = min_max(anchor.0);
    let (tlo, thi) = min_max(test.0);
    let lo = alo.max(tlo);
    let hi = ahi.min(thi);
    if hi <= lo {
        return Err(BdError::NoOverlap {
            axis,
            anchor_lo: shown(alo),
            anchor_hi: shown(ahi),
            test_lo: shown(tlo),
            test_hi: shown(thi),
        });
    }
    let singular_axis = if axis == "rate" {
        "log-rate"
    } else {
        "quality"
    };
    let ia = integral(anchor.0, anchor.1, method, lo, hi).ok_or(BdError::Singular {
        side: Side::Anchor,
        axis: singular_axis,
    })?;
    let it = integral(test.0, test.1, method, lo, hi).ok_or(BdError::Singular {
        side: Side::Test,
        axis: singular_axis,
    })?;
    Ok((it - ia) / (hi - lo))
}

/// Integral over `[lo, hi]` (inside the range of `x`) of the interpolant of `y(x)`; `None`
/// for a singular cubic fit. Piecewise methods need `x` strictly increasing.
fn integral(x: &[f64], y: &[f64], method: Method, lo: f64, hi: f64) -> Option<f64> {
    match method {
        Method::Pchip => Some(hermite_integral(x, y, &pchip_slopes(x, y), lo, hi)),
        Method::Akima => Some(hermite_integral(x, y, &akima_slopes(x, y), lo, hi)),
        Method::Cubic => cubic_fit_integral(x, y, lo, hi),
    }
}

/// `np.sign`: −1, 0 or 1.
fn sign(v: f64) -> i8 {
    if v > 0.0 {
        1
    } else if v < 0.0 {
        -1
    } else {
        0
    }
}

/// Secant slopes and interval widths.
fn secants(x: &[f64], y: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let h: Vec<f64> = x.windows(2).map(|w| w[1] - w[0]).collect();
    let m = y
        .windows(2)
        .zip(&h)
        .map(|(w, &h)| (w[1] - w[0]) / h)
        .collect();
    (h, m)
}

/// Knot slopes of `scipy.interpolate.PchipInterpolator` (`_find_derivatives`).
fn pchip_slopes(x: &[f64], y: &[f64]) -> Vec<f64> {
    let n = x.len();
    let (h, m) = secants(x, y);
    if n == 2 {
        return vec![m[0], m[0]];
    }
    let mut d = vec![0.0; n];
    for k in 1..n - 1 {
        let (m0, m1) = (m[k - 1], m[k]);
        if sign(m0) != sign(m1) || m0 == 0.0 || m1 == 0.0 {
            d[k] = 0.0;
        } else {
            let w1 = 2.0 * h[k] + h[k - 1];
            let w2 = h[k] + 2.0 * h[k - 1];
            let whmean = (w1 / m0 + w2 / m1) / (w1 + w2);
            d[k] = 1.0 / whmean;
        }
    }
    d[0] = pchip_edge(h[0], h[1], m[0], m[1]);
    d[n - 1] = pchip_edge(h[n - 2], h[n - 3], m[n - 2], m[n - 3]);
    d
}

/// One-sided three-point end slope, shape-preserving (`PchipInterpolator._edge_case`).
fn pchip_edge(h0: f64, h1: f64, m0: f64, m1: f64) -> f64 {
    let d = ((2.0 * h0 + h1) * m0 - h0 * m1) / (h0 + h1);
    if sign(d) != sign(m0) {
        0.0
    } else if sign(m0) != sign(m1) && d.abs() > 3.0 * m0.abs() {
        3.0 * m0
    } else {
        d
    }
}

/// Knot slopes of `scipy.interpolate.Akima1DInterpolator(x, y)` (method `"akima"`);
/// linear for two points (as `bjontegaard`, which uses a linear spline there).
fn akima_slopes(x: &[f64], y: &[f64]) -> Vec<f64> {
    let n = x.len();
    let (_, sec) = secants(x, y);
    if n == 2 {
        return vec![sec[0], sec[0]];
    }
    // m[2..n+1] are the n−1 secants, two extrapolated slopes on either side.
    let mut m = vec![0.0; n + 3];
    m[2..n + 1].copy_from_slice(&sec);
    m[1] = 2.0 * m[2] - m[3];
    m[0] = 2.0 * m[1] - m[2];
    m[n + 1] = 2.0 * m[n] - m[n - 1];
    m[n + 2] = 2.0 * m[n + 1] - m[n];
    let dm: Vec<f64> = m.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    let f12: Vec<f64> = (0..n).map(|i| dm[i + 2] + dm[i]).collect();
    let fmax = f12.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (0..n)
        .map(|i| {
            if f12[i] > 1e-9 * fmax {
                m[i + 1] + (dm[i] / f12[i]) * (m[i + 2] - m[i + 1])
            } else {
                0.5 * (m[i + 3] + m[i])
            }
        })
        .collect()
}

/// Exact integral over `[lo, hi]` of the cubic Hermite spline through `(x, y)` with knot
/// slopes `d`; `x` increasing, `[lo, hi]` inside `[x[0], x[n−1]]`.
fn hermite_integral(x: &[f64], y: &[f64], d: &[f64], lo: f64, hi: f64) -> f64 {
    let n = x.len();
    // Antiderivative of segment k from x[k] to x[k] + s.
    let seg = |k: usize, s: f64| -> f64 {
        let h = x[k + 1] - x[k];
        let m = (y[k + 1] - y[k]) / h;
        let c3 = (d[k] + d[k + 1] - 2.0 * m) / (h * h);
        let c2 = (3.0 * m - 2.0 * d[k] - d[k + 1]) / h;
        s * (y[k] + s * (d[k] / 2.0 + s * (c2 / 3.0 + s * c3 / 4.0)))
    };
    // Segment holding t (the last one for the right end).
    let locate = |t: f64| -> usize {
        let k = x.partition_point(|&v| v <= t);
        k.clamp(1, n - 1) - 1
    };
    let (ka, kb) = (locate(lo), locate(hi));
    let fa = seg(ka, lo - x[ka]);
    let fb = seg(kb, hi - x[kb]);
    let whole: f64 = (ka..kb).map(|k| seg(k, x[k + 1] - x[k])).sum();
    whole + fb - fa
}

/// Integral over `[lo, hi]` of the least-squares cubic through `(x, y)` (`np.polyfit(x, y,
/// 3)`); `None` when the fit is not determined. The fit is made in the centred and scaled
/// variable `t = (x − c) / s`, which spans the same polynomials and is better conditioned
/// than numpy's raw powers.
fn cubic_fit_integral(x: &[f64], y: &[f64], lo: f64, hi: f64) -> Option<f64> {
    const K: usize = 4;
    let n = x.len();
    if n < K {
        return None;
    }
    let (xmin, xmax) = min_max(x);
    let c = 0.5 * (xmin + xmax);
    let s = 0.5 * (xmax - xmin);
    if s <= 0.0 {
        return None;
    }
    // Householder QR of the n×4 Vandermonde matrix, applied to y as well.
    let mut a: Vec<[f64; K]> = x
        .iter()
        .map(|&v| {
            let t = (v - c) / s;
            [1.0, t, t * t, t * t * t]
        })
        .collect();
    let mut b = y.to_vec();
    let mut rdiag = [0.0; K];
    for j in 0..K {
        let norm = (j..n).map(|i| a[i][j] * a[i][j]).sum::<f64>().sqrt();
        if norm == 0.0 {
            return None;
        }
        let alpha = if a[j][j] > 0.0 { -norm } else { norm };
        // v = a[j..][j] − alpha e_j, stored in column j.
        a[j][j] -= alpha;
        let vnorm2: f64 = (j..n).map(|i| a[i][j] * a[i][j]).sum();
        for col in j + 1..K {
            let dot: f64 = (j..n).map(|i| a[i][j] * a[i][col]).sum();
            let f = 2.0 * dot / vnorm2;
            for row in a.iter_mut().take(n).skip(j) {
                row[col] -= f * row[j];
            }
        }
        let dot: f64 = (j..n).map(|i| a[i][j] * b[i]).sum();
        let f = 2.0 * dot / vnorm2;
        for (row, bi) in a.iter().zip(b.iter_mut()).skip(j) {
            *bi -= f * row[j];
        }
        rdiag[j] = alpha;
    }
    let rmax = rdiag.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if rdiag
        .iter()
        .any(|v| v.abs() <= rmax * n as f64 * f64::EPSILON * 16.0)
    {
        return None;
    }
    // Back substitution R coef = (Qᵀ y)[..4].
    let mut coef = [0.0; K];
    for j in (0..K).rev() {
        let acc: f64 = (j + 1..K).map(|col| a[j][col] * coef[col]).sum();
        coef[j] = (b[j] - acc) / rdiag[j];
    }
    let anti = |v: f64| -> f64 {
        let t = (v - c) / s;
        t * (coef[0] + t * (coef[1] / 2.0 + t * (coef[2] / 3.0 + t * coef[3] / 4.0)))
    };
    Some(s * (anti(hi) - anti(lo)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(r: &[f64], q: &[f64]) -> Curve {
        Curve::new(r, q).expect("valid curve")
    }

    #[test]
    fn identical_curves_give_zero() {
        let c = curve(&[0.1, 0.2, 0.4, 0.8, 1.6], &[28.0, 30.5, 33.0, 35.2, 37.0]);
        for m in [Method::Pchip, Method::Akima, Method::Cubic] {
            let r = bd(&c, &c, m).expect("bd");
            assert_eq!(r.bd_rate_percent, 0.0);
            assert_eq!(r.bd_metric, 0.0);
        }
    }

    #[test]
    fn halved_rate_is_minus_fifty_percent() {
        let q = [28.0, 30.5, 33.0, 35.2, 37.0];
        let a = curve(&[0.1, 0.2, 0.4, 0.8, 1.6], &q);
        let t = curve(&[0.05, 0.1, 0.2, 0.4, 0.8], &q);
        for m in [Method::Pchip, Method::Akima, Method::Cubic] {
            let r = bd_rate(&a, &t, m).expect("bd");
            assert!((r + 50.0).abs() < 1e-9, "{m}: {r}");
        }
    }

    #[test]
    fn hermite_integral_of_cubic_is_exact() {
        // A cubic with exact slopes is reproduced by the Hermite spline.
        let f = |x: f64| 1.0 + 2.0 * x - 0.5 * x * x + 0.1 * x * x * x;
        let df = |x: f64| 2.0 - x + 0.3 * x * x;
        let x = [0.0, 0.7, 1.5, 3.0, 4.0];
        let y: Vec<f64> = x.iter().map(|&v| f(v)).collect();
        let d: Vec<f64> = x.iter().map(|&v| df(v)).collect();
        let anti = |x: f64| x + x * x - x * x * x / 6.0 + 0.025 * x.powi(4);
        let got = hermite_integral(&x, &y, &d, 0.3, 3.6);
        assert!((got - (anti(3.6) - anti(0.3))).abs() < 1e-12);
        let got = cubic_fit_integral(&x, &y, 0.3, 3.6).expect("fit");
        assert!((got - (anti(3.6) - anti(0.3))).abs() < 1e-12);
    }

    #[test]
    fn decreasing_quality_mirrors_increasing() {
        let r = [0.1, 0.25, 0.4, 0.9, 1.6];
        let qa = [28.0, 30.5, 33.1, 35.2, 37.0];
        let qt = [29.0, 31.0, 33.0, 36.0, 37.5];
        let neg = |q: &[f64]| q.iter().map(|v| -v).collect::<Vec<_>>();
        for m in [Method::Pchip, Method::Akima, Method::Cubic] {
            let up = bd(&curve(&r, &qa), &curve(&r, &qt), m).expect("bd");
            let down = bd(&curve(&r, &neg(&qa)), &curve(&r, &neg(&qt)), m).expect("bd");
            assert!(
                (up.bd_rate_percent - down.bd_rate_percent).abs() < 1e-9,
                "{m}"
            );
            assert!((up.bd_metric + down.bd_metric).abs() < 1e-12, "{m}");
        }
    }

    #[test]
    fn errors() {
        assert!(matches!(
            Curve::new(&[0.1, 0.1], &[30.0, 31.0]),
            Err(BdError::DuplicateRate { .. })
        ));
        assert!(matches!(
            Curve::new(&[0.1, f64::NAN], &[30.0, 31.0]),
            Err(BdError::NotFinite { index: 1, .. })
        ));
        assert!(matches!(
            Curve::new(&[0.1, 0.0], &[30.0, 31.0]),
            Err(BdError::NonPositiveRate { index: 1, .. })
        ));
        let a = curve(&[0.1, 0.2, 0.4], &[30.0, 32.0, 34.0]);
        let t = curve(&[0.1, 0.2, 0.4], &[35.0, 36.0, 37.0]);
        assert!(matches!(
            bd_rate(&a, &t, Method::Cubic),
            Err(BdError::TooFewPoints { needed: 4, .. })
        ));
        assert!(matches!(
            bd_rate(&a, &t, Method::Pchip),
            Err(BdError::NoOverlap {
                axis: "quality",
                ..
            })
        ));
        let bumpy = curve(&[0.1, 0.2, 0.4], &[30.0, 33.0, 32.0]);
        assert!(matches!(
            bd_rate(&a, &bumpy, Method::Akima),
            Err(BdError::NotMonotone {
                side: Side::Test,
                ..
            })
        ));
        let one = curve(&[0.1], &[30.0]);
        assert!(matches!(
            bd_metric(&one, &a, Method::Pchip),
            Err(BdError::TooFewPoints {
                side: Side::Anchor,
                ..
            })
        ));
    }

    #[test]
    fn upper_envelope_drops_dominated_points() {
        let c = Curve::new(&[0.4, 0.1, 0.2, 0.3, 0.5], &[0.27, 0.20, 0.26, 0.25, 0.27]).unwrap();
        let (env, dropped) = c.upper_envelope();
        assert_eq!(env.rates(), &[0.1, 0.2, 0.4]);
        assert_eq!(env.qualities(), &[0.20, 0.26, 0.27]);
        assert_eq!(dropped, vec![(0.3, 0.25), (0.5, 0.27)]);
        let (same, none) = env.upper_envelope();
        assert_eq!(same, env);
        assert!(none.is_empty());
    }
}
