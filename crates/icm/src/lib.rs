//! icm: reference decoder and encoder of the icm bitstream (image coding for machines).
//!
//! The crate mirrors the layers of the specification in `spec/`:
//! [`container`] (sections 4-6), [`model`] (7), [`entropy`] (8), [`hyper`] (9),
//! [`codec`] (3, 10-12), with the floating-point transforms in [`transform`] and the
//! integer conventions of section 2 in [`fixed`]. It is the codec only: evaluation, task
//! decoders, anchors and the conformance runner live in the `icm-eval` crate, the command
//! line in `icm-cli` (docs/STRUCTURE.md).

pub mod codec;
pub mod container;
pub mod entropy;
pub mod fixed;
pub mod hex;
pub mod hyper;
pub mod model;
pub mod rng;
pub mod testimage;
pub mod transform;
