//! `icm._icm`: the extension module of the Python package `icm` (distribution `icm-codec`).
//!
//! A thin layer over the same libraries as the `icm` command, with no codec logic of its
//! own: `icm::codec` encodes and decodes, `icm::model` finds and validates models,
//! `icm_eval` gives BD-rates, results files, the conformance runner, the stream
//! summary, the task evaluation ([`task_eval`]), the anchors ([`anchor_eval`]) and the
//! rate-distortion evaluation of `icm eval` ([`rd_eval`]), run on Ray by `icm.dist`.
//! What it adds is the crossing of the boundary: numpy arrays in and out ([`codec`]),
//! Python exceptions for the Rust errors ([`errors`], classes in `icm/_errors.py`), the
//! model zoo built in ([`models`]), and the GIL released while the codec runs. The documentation of every public name is in `icm/__init__.pyi`.

mod anchor_eval;
mod codec;
mod errors;
mod eval;
mod json;
mod models;
mod rd_eval;
mod task_eval;

use pyo3::prelude::*;

/// The extension module `icm._icm`; `icm/__init__.py` re-exports its public names.
#[pymodule]
fn _icm(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(codec::encode, m)?)?;
    m.add_function(wrap_pyfunction!(codec::decode, m)?)?;
    m.add_function(wrap_pyfunction!(codec::decode_latents, m)?)?;
    m.add_function(wrap_pyfunction!(codec::info, m)?)?;
    m.add_function(wrap_pyfunction!(eval::bd_rate, m)?)?;
    m.add_function(wrap_pyfunction!(eval::conformance, m)?)?;
    m.add_class::<models::PyModel>()?;
    m.add_class::<task_eval::PyTaskEvaluation>()?;
    m.add_class::<anchor_eval::PyAnchorEvaluation>()?;
    m.add_class::<rd_eval::PyRdEvaluation>()?;
    m.add("ZOO", models::zoo_names())?;
    m.add("DEFAULT_QUALITY", icm::model::ZOO_DEFAULT_QUALITY)?;
    m.add("SPEC_VERSION", "1.3")?;
    Ok(())
}
