//! The normative decoding path gives the same latents in every build and with any thread
//! count: the committed vectors (made by `cargo run --release --example make_vectors`) must
//! decode to their recorded hashes in this build, with 1 and with 2 threads.
//! `scripts/test.sh` runs this file in debug and in release.

use icm::codec::decode_latents;
use icm::model::Model;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn vectors_decode_to_recorded_latents_with_1_and_2_threads() {
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("conformance/vectors.json")).expect("vectors.json"),
    )
    .expect("json");
    let vectors = index["vectors"].as_array().expect("vectors");
    assert!(!vectors.is_empty());
    let mut checked = 0;
    for v in vectors {
        // Must-fail vectors have an error class instead of a hash.
        if v.get("latents_sha256").is_none() {
            continue;
        }
        checked += 1;
        let model_bytes =
            std::fs::read(root().join(v["model"].as_str().expect("model"))).expect("model file");
        let model = Model::from_bytes(&model_bytes).expect("model loads");
        let stream =
            std::fs::read(root().join(v["stream"].as_str().expect("stream"))).expect("stream file");
        let want = v["latents_sha256"].as_str().expect("hash");
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            let got = pool
                .install(|| decode_latents(&stream, &model))
                .expect("decodes");
            assert_eq!(
                got.sha256_hex(),
                want,
                "{} with {threads} threads",
                v["name"]
            );
        }
    }
    assert!(checked >= 10, "only {checked} decodable vectors");
}
