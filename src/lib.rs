//! icm: reference encoder/decoder for image coding for machines.
//!
//! The crate mirrors the layers of the specification in `spec/`:
//! [`container`] (sections 4-6), [`model`] (7), [`entropy`] (8), [`hyper`] (9),
//! [`codec`] (3, 10-12), with the floating-point transforms in [`transform`] and the
//! integer conventions of section 2 in [`fixed`]. [`task`] holds the plug-in task decoders
//! (detection, classification, segmentation on ONNX Runtime, feature `tasks`) and their
//! scoring.

pub mod anchor;
pub mod bdrate;
pub mod codec;
pub mod conformance;
pub mod container;
pub mod entropy;
pub mod fixed;
pub mod hyper;
pub mod jpeg;
pub mod metrics;
pub mod model;
pub mod npy;
pub mod picture;
pub mod task;
#[cfg(test)]
mod test_rng;
pub mod testimage;
pub mod transform;
