//! Floating-point analysis and synthesis transforms (informative part of the codec).
//!
//! The layers reproduce PyTorch semantics (`nn.Conv2d`, `nn.ConvTranspose2d`,
//! CompressAI `GDN`, `nn.ReLU`) on single CHW `f32` images, so weights exported
//! from a PyTorch model can be used directly.
//!
//! Convolutions run as banded im2col + SGEMM (`matrixmultiply`), transposed
//! convolutions as a polyphase decomposition into ordinary correlations, and
//! GDN as a 1x1 GEMM on `x^2`. Work is split into bands whose size depends only
//! on the layer and tensor shapes, so results do not depend on the thread count.

mod adjoint;
mod conv;
mod convt_small;
mod gdn;
mod kernels;
#[cfg(test)]
mod tests;

pub use adjoint::{Differentiable, Tape};
pub use conv::{Conv2d, ConvTranspose2d};
pub use gdn::Gdn;

/// Errors reported by the transforms for inconsistent shapes or parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// The tensor's data length does not match `c * h * w`.
    #[error("tensor data has {got} values, expected {c}x{h}x{w}")]
    DataLength {
        /// Channels.
        c: usize,
        /// Height.
        h: usize,
        /// Width.
        w: usize,
        /// Actual data length.
        got: usize,
    },
    /// The input has zero height or width.
    #[error("empty input: {h}x{w}")]
    EmptyInput {
        /// Height.
        h: usize,
        /// Width.
        w: usize,
    },
    /// The input channel count does not match the layer.
    #[error("{layer}: expected {expected} input channels, got {got}")]
    ChannelMismatch {
        /// Layer kind.
        layer: &'static str,
        /// Channels the layer expects.
        expected: usize,
        /// Channels supplied.
        got: usize,
    },
    /// A parameter vector has the wrong length.
    #[error("{layer}: {param} has {got} values, expected {expected}")]
    ParamLength {
        /// Layer kind.
        layer: &'static str,
        /// Parameter name.
        param: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// A layer hyper-parameter is invalid (zero channels, kernel size or stride).
    #[error("{layer}: invalid configuration: {reason}")]
    InvalidConfig {
        /// Layer kind.
        layer: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A transform's output does not have the size the tiling gives (spec 5.3).
    #[error("output is {got_h}x{got_w}, expected {h}x{w}")]
    OutputSize {
        /// Expected height.
        h: usize,
        /// Expected width.
        w: usize,
        /// Height produced.
        got_h: usize,
        /// Width produced.
        got_w: usize,
    },
    /// A tensor size overflows `usize`.
    #[error("tensor size overflows")]
    Overflow,
    /// An error raised by one layer of a [`Sequential`].
    #[error("layer {index}: {source}")]
    Layer {
        /// Index of the failing layer.
        index: usize,
        /// The underlying error.
        source: Box<TransformError>,
    },
}

/// A C x H x W tensor of f32 in row-major CHW order.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// Values, index `(c * h + y) * w + x`.
    pub data: Vec<f32>,
}

impl Tensor {
    /// A tensor filled with zeros.
    ///
    /// # Panics
    /// Panics if `c * h * w` overflows `usize`.
    pub fn zeros(c: usize, h: usize, w: usize) -> Self {
        let n = c
            .checked_mul(h)
            .and_then(|v| v.checked_mul(w))
            .expect("tensor size overflows");
        Self {
            c,
            h,
            w,
            data: vec![0.0; n],
        }
    }

    /// Wraps `data`, checking that its length is `c * h * w`.
    pub fn new(c: usize, h: usize, w: usize, data: Vec<f32>) -> Result<Self, TransformError> {
        let t = Self { c, h, w, data };
        t.check()?;
        Ok(t)
    }

    /// The value at channel `c`, row `y`, column `x`.
    ///
    /// # Panics
    /// Panics if the index is out of range.
    pub fn get(&self, c: usize, y: usize, x: usize) -> f32 {
        assert!(c < self.c && y < self.h && x < self.w, "index out of range");
        self.data[(c * self.h + y) * self.w + x]
    }

    /// Sets the value at channel `c`, row `y`, column `x`.
    ///
    /// # Panics
    /// Panics if the index is out of range.
    pub fn set(&mut self, c: usize, y: usize, x: usize, v: f32) {
        assert!(c < self.c && y < self.h && x < self.w, "index out of range");
        self.data[(c * self.h + y) * self.w + x] = v;
    }

    /// Checks that the data length matches the shape.
    pub fn check(&self) -> Result<(), TransformError> {
        let n = shape_len(self.c, self.h, self.w)?;
        if self.data.len() != n {
            return Err(TransformError::DataLength {
                c: self.c,
                h: self.h,
                w: self.w,
                got: self.data.len(),
            });
        }
        Ok(())
    }
}

/// `c * h * w`, or an overflow error.
fn shape_len(c: usize, h: usize, w: usize) -> Result<usize, TransformError> {
    c.checked_mul(h)
        .and_then(|v| v.checked_mul(w))
        .ok_or(TransformError::Overflow)
}

/// Checks a layer input: consistent data, `cin` channels, non-empty.
fn check_input(x: &Tensor, layer: &'static str, cin: usize) -> Result<(), TransformError> {
    x.check()?;
    if x.c != cin {
        return Err(TransformError::ChannelMismatch {
            layer,
            expected: cin,
            got: x.c,
        });
    }
    if x.h == 0 || x.w == 0 {
        return Err(TransformError::EmptyInput { h: x.h, w: x.w });
    }
    Ok(())
}

/// Checks a parameter vector length.
fn check_len(
    layer: &'static str,
    param: &'static str,
    got: usize,
    expected: Option<usize>,
) -> Result<(), TransformError> {
    let expected = expected.ok_or(TransformError::Overflow)?;
    if got != expected {
        return Err(TransformError::ParamLength {
            layer,
            param,
            expected,
            got,
        });
    }
    Ok(())
}

/// One layer of a transform.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// Strided convolution.
    Conv(Conv2d),
    /// Stride-2 transposed convolution.
    ConvTranspose(ConvTranspose2d),
    /// GDN or inverse GDN.
    Gdn(Gdn),
    /// Elementwise `max(x, 0)`.
    Relu,
    /// Elementwise LeakyReLU: `x` for `x >= 0`, `slope * x` otherwise (PyTorch's
    /// `nn.LeakyReLU(slope)`).
    LeakyRelu(f32),
}

impl Layer {
    /// Applies the layer to `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, TransformError> {
        match self {
            Layer::Conv(l) => l.forward(x),
            Layer::ConvTranspose(l) => l.forward(x),
            Layer::Gdn(l) => l.forward(x),
            Layer::Relu | Layer::LeakyRelu(_) => {
                x.check()?;
                let mut y = x.clone();
                self.activate_inplace(&mut y.data);
                Ok(y)
            }
        }
    }

    /// Applies an elementwise activation in place; other layers leave `v` unchanged.
    fn activate_inplace(&self, v: &mut [f32]) {
        match self {
            Layer::Relu => relu_inplace(v),
            Layer::LeakyRelu(slope) => {
                for x in v {
                    if *x < 0.0 {
                        *x *= slope;
                    }
                }
            }
            _ => {}
        }
    }

    /// Checks the parameters against `cin` input channels; returns the output channels.
    pub fn validate(&self, cin: usize) -> Result<usize, TransformError> {
        let (layer, expected, cout) = match self {
            Layer::Conv(l) => {
                l.validate()?;
                ("Conv2d", l.cin, l.cout)
            }
            Layer::ConvTranspose(l) => {
                l.validate()?;
                ("ConvTranspose2d", l.cin(), l.cout())
            }
            Layer::Gdn(l) => {
                l.validate()?;
                ("Gdn", l.c, l.c)
            }
            Layer::Relu | Layer::LeakyRelu(_) => return Ok(cin),
        };
        if expected != cin {
            return Err(TransformError::ChannelMismatch {
                layer,
                expected,
                got: cin,
            });
        }
        Ok(cout)
    }
}

/// ReLU in place; NaN propagates as in PyTorch.
fn relu_inplace(v: &mut [f32]) {
    for x in v {
        if *x < 0.0 {
            *x = 0.0;
        }
    }
}

/// A sequence of layers applied in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sequential {
    /// The layers, first applied first.
    pub layers: Vec<Layer>,
}

impl Sequential {
    /// Applies all layers to `x`. Errors are wrapped in [`TransformError::Layer`].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, TransformError> {
        x.check()?;
        let mut cur: Option<Tensor> = None;
        for (index, layer) in self.layers.iter().enumerate() {
            let wrap = |e| TransformError::Layer {
                index,
                source: Box::new(e),
            };
            match (layer, cur.as_mut()) {
                (Layer::Relu | Layer::LeakyRelu(_), Some(t)) => layer.activate_inplace(&mut t.data),
                _ => {
                    let next = layer.forward(cur.as_ref().unwrap_or(x)).map_err(wrap)?;
                    cur = Some(next);
                }
            }
        }
        Ok(cur.unwrap_or_else(|| x.clone()))
    }

    /// Checks every layer for `cin` input channels; returns the output channels.
    pub fn validate(&self, cin: usize) -> Result<usize, TransformError> {
        self.layers
            .iter()
            .enumerate()
            .try_fold(cin, |c, (index, layer)| {
                layer.validate(c).map_err(|e| TransformError::Layer {
                    index,
                    source: Box::new(e),
                })
            })
    }
}
