//! AFL++ target: `icm::container::parse` on arbitrary bytes.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        icm_fuzz::fuzz_container(data);
    });
}
