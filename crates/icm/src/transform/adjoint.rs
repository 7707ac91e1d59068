//! Gradients of the transforms: vector-Jacobian products for the encoder's
//! rate-distortion optimisation (spec 12.6, informative).
//!
//! Only the gradient with respect to a layer's *input* is computed (the weights are
//! fixed). The adjoint of each linear layer is itself a layer of this module, so the
//! backward pass runs on the same tuned kernels as the forward pass:
//! - a stride-2 transposed convolution with weights `[cin][cout][k][k]` is the adjoint of
//!   the stride-2 convolution with the same array read as `[cout'][cin'][k][k]`, so its
//!   input gradient is that convolution applied to the output gradient;
//! - a stride-1 convolution's input gradient is the stride-1 convolution with the kernel
//!   flipped and the channel axes swapped;
//! - GDN and the activations are elementwise or 1x1 ([`Gdn::backward`]).

use super::{Conv2d, Gdn, Layer, Sequential, Tensor, TransformError};

/// The input gradient of one layer.
#[derive(Debug, Clone, PartialEq)]
enum LayerAdjoint {
    /// A convolution that maps the output gradient to the input gradient.
    Conv(Conv2d),
    /// GDN or IGDN, which needs the layer input.
    Gdn(Gdn),
    /// `g * (x > 0)`.
    Relu,
    /// `g * (x >= 0 ? 1 : slope)`.
    LeakyRelu(f32),
}

/// A [`Sequential`] with the adjoint of every layer prepared, to compute the gradient of a
/// scalar loss of its output with respect to its input.
#[derive(Debug, Clone, PartialEq)]
pub struct Differentiable<'a> {
    net: &'a Sequential,
    adjoints: Vec<LayerAdjoint>,
}

/// The inputs of every layer from one [`Differentiable::forward`], kept for the backward
/// pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Tape {
    inputs: Vec<Tensor>,
}

impl<'a> Differentiable<'a> {
    /// Prepares the adjoints of `net`'s layers. A strided convolution (not part of any
    /// synthesis transform) is refused.
    pub fn new(net: &'a Sequential) -> Result<Self, TransformError> {
        let adjoints = net
            .layers
            .iter()
            .enumerate()
            .map(|(index, layer)| {
                adjoint(layer).map_err(|e| TransformError::Layer {
                    index,
                    source: Box::new(e),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { net, adjoints })
    }

    /// Runs the network on `x`, keeping every layer's input.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tape), TransformError> {
        x.check()?;
        let mut inputs = Vec::with_capacity(self.net.layers.len());
        let mut cur = x.clone();
        for (index, layer) in self.net.layers.iter().enumerate() {
            let next = layer.forward(&cur).map_err(|e| TransformError::Layer {
                index,
                source: Box::new(e),
            })?;
            inputs.push(std::mem::replace(&mut cur, next));
        }
        Ok((cur, Tape { inputs }))
    }

    /// The gradient with respect to the network input, given the gradient `g` with
    /// respect to the output of the [`forward`](Self::forward) run that made `tape`.
    pub fn backward(&self, tape: &Tape, g: Tensor) -> Result<Tensor, TransformError> {
        if tape.inputs.len() != self.adjoints.len() {
            return Err(TransformError::InvalidConfig {
                layer: "Differentiable",
                reason: "tape from another network",
            });
        }
        let mut g = g;
        for (index, (adj, x)) in self.adjoints.iter().zip(&tape.inputs).enumerate().rev() {
            let wrap = |e| TransformError::Layer {
                index,
                source: Box::new(e),
            };
            g = match adj {
                LayerAdjoint::Conv(conv) => {
                    let gx = conv.forward(&g).map_err(wrap)?;
                    if (gx.c, gx.h, gx.w) != (x.c, x.h, x.w) {
                        return Err(wrap(TransformError::OutputSize {
                            h: x.h,
                            w: x.w,
                            got_h: gx.h,
                            got_w: gx.w,
                        }));
                    }
                    gx
                }
                LayerAdjoint::Gdn(gdn) => gdn.backward(x, &g).map_err(wrap)?,
                LayerAdjoint::Relu | LayerAdjoint::LeakyRelu(_) => {
                    g.check().map_err(wrap)?;
                    if g.data.len() != x.data.len() {
                        return Err(wrap(TransformError::DataLength {
                            c: x.c,
                            h: x.h,
                            w: x.w,
                            got: g.data.len(),
                        }));
                    }
                    let slope = match adj {
                        LayerAdjoint::LeakyRelu(s) => *s,
                        _ => 0.0,
                    };
                    for (gv, xv) in g.data.iter_mut().zip(&x.data) {
                        if *xv < 0.0 {
                            *gv *= slope;
                        }
                    }
                    g
                }
            };
        }
        Ok(g)
    }
}

/// The adjoint of one layer.
fn adjoint(layer: &Layer) -> Result<LayerAdjoint, TransformError> {
    Ok(match layer {
        Layer::ConvTranspose(t) => LayerAdjoint::Conv(Conv2d {
            cin: t.cout(),
            cout: t.cin(),
            k: t.kernel_size(),
            stride: 2,
            weight: t.weights().to_vec(),
            bias: vec![0.0; t.cin()],
        }),
        Layer::Conv(c) if c.stride == 1 => {
            c.validate()?;
            let (cin, cout, k) = (c.cin, c.cout, c.k);
            let mut weight = vec![0.0f32; c.weight.len()];
            for co in 0..cout {
                for ci in 0..cin {
                    for ky in 0..k {
                        for kx in 0..k {
                            weight[((ci * cout + co) * k + ky) * k + kx] =
                                c.weight[((co * cin + ci) * k + (k - 1 - ky)) * k + (k - 1 - kx)];
                        }
                    }
                }
            }
            LayerAdjoint::Conv(Conv2d {
                cin: cout,
                cout: cin,
                k,
                stride: 1,
                weight,
                bias: vec![0.0; cin],
            })
        }
        Layer::Conv(_) => {
            return Err(TransformError::InvalidConfig {
                layer: "Conv2d",
                reason: "no gradient for strided convolutions",
            })
        }
        Layer::Gdn(g) => {
            g.validate()?;
            LayerAdjoint::Gdn(g.clone())
        }
        Layer::Relu => LayerAdjoint::Relu,
        Layer::LeakyRelu(s) => LayerAdjoint::LeakyRelu(*s),
    })
}
