//! AFL++ target: `icm_import::torch::state_dict` on arbitrary bytes (PyTorch checkpoints:
//! zip and legacy formats, pickle). Seeds: small fixtures of crates/icm-import/tests/data.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        // Ok or a typed error; a panic is a finding.
        let _ = icm_import::torch::state_dict(data);
    });
}
