//! icm-eval: everything around the icm codec that measures it: the plug-in task decoders
//! and their scoring ([`task`], ONNX Runtime under the feature `tasks`), conventional-codec
//! anchors ([`anchor`]), the rate-distortion run of `icm eval` ([`eval_job`]), quality metrics ([`metrics`]), Bjøntegaard deltas ([`bdrate`]),
//! JPEG to DCT coefficients ([`jpeg`], spec Annex B), the conformance runner
//! ([`conformance`]), the summary of a stream ([`info`]), and the file formats the tools read
//! and write ([`picture`], [`npy`], [`results`]).
//! The codec itself is the `icm` crate (docs/STRUCTURE.md).

pub mod anchor;
pub mod bdrate;
pub mod conformance;
pub mod eval_job;
pub mod info;
pub mod jpeg;
pub mod metrics;
pub mod npy;
pub mod picture;
pub mod rd;
pub mod results;
pub mod task;
