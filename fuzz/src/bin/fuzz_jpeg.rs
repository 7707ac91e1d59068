//! AFL++ target: `icm_eval::jpeg` (JPEG to DCT coefficients) on arbitrary bytes.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        icm_fuzz::fuzz_jpeg(data);
    });
}
