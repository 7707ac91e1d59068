//! AFL++ target: `icm::model::Model::from_bytes` on arbitrary bytes (model files).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        icm_fuzz::fuzz_model(data);
    });
}
