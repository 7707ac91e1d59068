//! AFL++ target: full decode with a small seeded model on arbitrary bytes.

use std::sync::OnceLock;

fn main() {
    // Build the model before the (deferred) fork server starts, so children reuse it.
    icm_fuzz::model();
    // The decoder runs tiles on rayon. Threads do not survive fork(), so the pool is made
    // in the child (first iteration) rather than before the fork server starts; one
    // thread keeps coverage deterministic.
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    afl::fuzz!(|data: &[u8]| {
        let pool = POOL.get_or_init(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .expect("thread pool")
        });
        pool.install(|| icm_fuzz::fuzz_decode(data));
    });
}
