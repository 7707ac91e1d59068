//! Robustness of the decoder on hostile input (spec 13): every malformed stream returns
//! `Err`, nothing panics, loops or allocates without bound.
//!
//! * random byte strings (with and without a valid header in front);
//! * valid streams with random mutations (bit flips, overwrites, truncation, insertion,
//!   deletion, chunk-length changes);
//! * every truncation of a valid stream is rejected;
//! * optional (lowercase) chunks are skipped, unknown required (uppercase) chunks rejected;
//! * every input in `fuzz/regressions/` (crashes found by `.ci/fuzz.sh`) is replayed.
//!
//! Proptest uses a random seed per run; set `PROPTEST_RNG_SEED=<u64>` to reproduce a run
//! and `PROPTEST_CASES=<n>` to scale every property up or down.

use icm::codec::{decode, decode_latents, encode, CodecError, EncodeOptions, RgbImage};
use icm::container::{self, ContainerError};
use icm::model::{seeded_model, Model, SMALL_WIDTHS};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The small seeded model; the fuzz targets in `fuzz/` build the very same one, so their
/// regressions replay here on the same code paths.
fn model() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| seeded_model(1, SMALL_WIDTHS, "test-seed1", Some(1)).expect("seeded model"))
}

/// A smooth synthetic image with an edge, deterministic.
fn synthetic(width: u32, height: u32) -> RgbImage {
    let mut img = RgbImage::new(width, height);
    for y in 0..height {
        for x in 0..width {
            let i = ((y * width + x) * 3) as usize;
            img.data[i] = ((x * 255) / width.max(1)) as u8;
            img.data[i + 1] = ((y * 255) / height.max(1)) as u8;
            img.data[i + 2] = if (x / 8 + y / 8) % 2 == 0 { 200 } else { 40 };
        }
    }
    img
}

/// Valid streams: (width, height, tile) = (1,1,1024), (17,33,1024), (130,65,64) (6 tiles).
/// Version 1.0 streams, without tile checksums: mutated payloads then reach the entropy
/// decoder instead of stopping at the checksum (spec 4.5, tested on its own below).
fn streams() -> &'static [Vec<u8>] {
    static S: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    S.get_or_init(|| {
        [(1, 1, 1024), (17, 33, 1024), (130, 65, 64)]
            .into_iter()
            .map(|(w, h, t)| {
                let bytes = encode(
                    &synthetic(w, h),
                    model(),
                    &EncodeOptions {
                        tile: (t, t),
                        checksums: false,
                        ..EncodeOptions::default()
                    },
                )
                .expect("encode");
                decode(&bytes, model()).expect("a fresh stream decodes");
                bytes
            })
            .collect()
    })
}

/// Largest image the property tests fully decode. A mutated header may describe a larger
/// image whose tiles still parse (an empty ANS payload is a valid all-zero tile), which
/// is legal but slow at opt-level 1; such streams are only parsed and their latents are
/// not synthesised.
const MAX_DECODE_PIXELS: u64 = 1 << 16;

/// Decodes `bytes` and checks the invariants that must hold whatever the input: no panic,
/// and an accepted stream yields an image of the size its header declares.
fn check(bytes: &[u8]) {
    let parsed = container::parse(bytes);
    let Ok(stream) = parsed else {
        // A stream the container layer rejects must be rejected by the codec too.
        assert!(decode(bytes, model()).is_err());
        return;
    };
    let (w, h) = (stream.header.width, stream.header.height);
    if u64::from(w) * u64::from(h) > MAX_DECODE_PIXELS {
        return;
    }
    match decode(bytes, model()) {
        Ok(d) => {
            assert_eq!((d.image.width, d.image.height), (w, h));
            assert_eq!(d.image.data.len(), w as usize * h as usize * 3);
            assert_eq!(d.latents.tiles.len(), stream.tiles.len());
        }
        Err(e) => {
            // Errors must render (Display must not panic either).
            let _ = e.to_string();
        }
    }
}

/// Length of the header of a stream produced by `encode` (spec 4.1, table 4-1).
fn header_len(s: &[u8]) -> usize {
    4 + 4 + 16 + 2 + 1 + s[26] as usize + 32
}

/// Offsets of the chunks of a valid stream.
fn chunk_offsets(s: &[u8]) -> Vec<usize> {
    let mut pos = header_len(s);
    let mut out = Vec::new();
    while pos + 8 <= s.len() {
        out.push(pos);
        let len = u32::from_le_bytes(s[pos + 4..pos + 8].try_into().unwrap()) as usize;
        pos += 8 + len;
    }
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    BitFlip {
        at: usize,
        bit: u8,
    },
    Overwrite {
        at: usize,
        byte: u8,
    },
    Truncate {
        len: usize,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    Delete {
        at: usize,
        len: usize,
    },
    /// Replaces the length field of the `chunk`-th chunk (mod the chunk count).
    ChunkLength {
        chunk: usize,
        value: u32,
    },
    /// Adds a small delta to the length field of the `chunk`-th chunk.
    ChunkLengthDelta {
        chunk: usize,
        delta: i32,
    },
    /// Replaces a header field (4 bytes at a header offset) with an interesting value.
    HeaderWord {
        at: usize,
        value: u32,
    },
}

fn interesting_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        Just(63),
        Just(64),
        Just(65),
        Just(128),
        Just(2048),
        Just(8192),
        Just(u32::MAX),
        Just(u32::MAX - 7),
        Just(0x8000_0000),
        any::<u32>(),
        0u32..4096,
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let idx = any::<usize>();
    prop_oneof![
        4 => (idx, 0u8..8).prop_map(|(at, bit)| Mutation::BitFlip { at, bit }),
        3 => (idx, any::<u8>()).prop_map(|(at, byte)| Mutation::Overwrite { at, byte }),
        2 => idx.prop_map(|len| Mutation::Truncate { len }),
        2 => (idx, proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => (idx, 1usize..16).prop_map(|(at, len)| Mutation::Delete { at, len }),
        2 => (idx, interesting_u32())
            .prop_map(|(chunk, value)| Mutation::ChunkLength { chunk, value }),
        2 => (idx, -8i32..=8)
            .prop_map(|(chunk, delta)| Mutation::ChunkLengthDelta { chunk, delta }),
        2 => (0usize..6, interesting_u32())
            .prop_map(|(field, value)| Mutation::HeaderWord { at: 8 + 4 * field, value }),
    ]
}

fn apply(s: &mut Vec<u8>, m: &Mutation) {
    let set_chunk_len = |s: &mut Vec<u8>, chunk: usize, f: &dyn Fn(u32) -> u32| {
        let offsets = chunk_offsets(s);
        if offsets.is_empty() {
            return;
        }
        let at = offsets[chunk % offsets.len()] + 4;
        let old = u32::from_le_bytes(s[at..at + 4].try_into().unwrap());
        s[at..at + 4].copy_from_slice(&f(old).to_le_bytes());
    };
    match m {
        Mutation::BitFlip { at, bit } if !s.is_empty() => {
            let i = at % s.len();
            s[i] ^= 1 << bit;
        }
        Mutation::Overwrite { at, byte } if !s.is_empty() => {
            let i = at % s.len();
            s[i] = *byte;
        }
        Mutation::Truncate { len } => {
            let n = len % (s.len() + 1);
            s.truncate(n);
        }
        Mutation::Insert { at, bytes } => {
            let i = at % (s.len() + 1);
            s.splice(i..i, bytes.iter().copied());
        }
        Mutation::Delete { at, len } if !s.is_empty() => {
            let i = at % s.len();
            let j = (i + len).min(s.len());
            s.drain(i..j);
        }
        Mutation::ChunkLength { chunk, value } if s.len() > 27 => {
            let v = *value;
            set_chunk_len(s, *chunk, &move |_| v)
        }
        Mutation::ChunkLengthDelta { chunk, delta } if s.len() > 27 => {
            let d = *delta;
            set_chunk_len(s, *chunk, &move |old| old.wrapping_add_signed(d))
        }
        Mutation::HeaderWord { at, value } if s.len() >= at + 4 => {
            s[*at..at + 4].copy_from_slice(&value.to_le_bytes());
        }
        _ => {}
    }
}

/// `default` cases, or `PROPTEST_CASES` when set (it scales every property of this file).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(1024),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// (a) Arbitrary bytes: parse and decode return Ok or Err, never panic.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = container::parse(&bytes);
        check(&bytes);
    }

    /// (a) Arbitrary bytes behind the magic bytes, so the header reader is exercised.
    #[test]
    fn random_after_magic_never_panics(
        tail in proptest::collection::vec(any::<u8>(), 0..300),
        level in 0u8..4,
    ) {
        let mut bytes = vec![0x89, b'I', b'C', b'M', 1, 0, 0, level];
        bytes.extend_from_slice(&tail);
        check(&bytes);
    }

    /// (a) A valid header followed by arbitrary bytes: exercises the chunk parser.
    #[test]
    fn random_chunks_after_valid_header_never_panic(
        which in 0usize..3,
        tail in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let s = &streams()[which];
        let mut bytes = s[..header_len(s)].to_vec();
        bytes.extend_from_slice(&tail);
        check(&bytes);
    }

    /// (a) A valid header and well-formed TILE chunks with arbitrary ANS payloads:
    /// exercises the entropy decoder and the hyper-synthesis on garbage.
    #[test]
    fn random_tile_payloads_never_panic(
        which in 0usize..3,
        payloads in proptest::collection::vec(
            (proptest::collection::vec(any::<u32>(), 0..8),
             proptest::collection::vec(any::<u32>(), 0..64)),
            6,
        ),
    ) {
        let s = &streams()[which];
        let stream = container::parse(s).unwrap();
        let header = stream.header.clone();
        let n = stream.tiles.len();
        let words = |v: &Vec<u32>| v.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>();
        let tiles: Vec<container::CodedTile> = payloads
            .iter()
            .take(n)
            .map(|(z, y)| (words(z), words(y)).into())
            .collect();
        let bytes = container::write(&header, &tiles, false);
        check(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(2048),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// (b) Valid streams with one to four random mutations decode to Ok or Err.
    #[test]
    fn mutated_streams_never_panic(
        which in 0usize..3,
        mutations in proptest::collection::vec(mutation(), 1..5),
    ) {
        let mut s = streams()[which].clone();
        for m in &mutations {
            apply(&mut s, m);
        }
        check(&s);
    }
}

/// (b) Every single-bit flip of the smallest stream, exhaustively.
#[test]
fn every_bit_flip_of_smallest_stream() {
    let s = &streams()[0];
    for i in 0..s.len() {
        for bit in 0..8 {
            let mut m = s.clone();
            m[i] ^= 1 << bit;
            check(&m);
        }
    }
}

/// (c) No proper prefix of a valid stream is accepted, neither by the container parser
/// nor by the decoder.
#[test]
fn every_truncation_is_rejected() {
    for s in streams() {
        for len in 0..s.len() {
            let prefix = &s[..len];
            assert!(
                container::parse(prefix).is_err(),
                "prefix of {len}/{} bytes parsed",
                s.len()
            );
            assert!(decode_latents(prefix, model()).is_err());
            assert!(decode(prefix, model()).is_err());
        }
        assert!(decode(s, model()).is_ok());
    }
}

/// (c) Trailing bytes after IEND are rejected.
#[test]
fn trailing_data_is_rejected() {
    for s in streams() {
        for extra in [&[0u8][..], b"IEND\0\0\0\0", b"meta\0\0\0\0"] {
            let mut t = s.clone();
            t.extend_from_slice(extra);
            assert!(matches!(
                container::parse(&t),
                Err(ContainerError::TrailingData { .. })
            ));
            assert!(decode(&t, model()).is_err());
        }
    }
}

fn chunk(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut c = kind.to_vec();
    c.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    c.extend_from_slice(payload);
    c
}

/// (d) Optional chunks (lowercase first letter) are skipped wherever they stand; unknown
/// required chunks (uppercase) are errors.
#[test]
fn optional_chunks_are_skipped_required_are_errors() {
    for s in streams() {
        let reference = decode_latents(s, model()).expect("valid");
        let offsets = chunk_offsets(s);
        let iend = s.len() - 8;
        assert_eq!(*offsets.last().unwrap(), iend);
        // Before IEND, right after the header, and between the first two chunks.
        let mut positions = vec![iend, header_len(s)];
        positions.extend(offsets.get(1));
        for &at in &positions {
            for (kind, payload) in [
                (b"meta", &b"{\"camera\":\"x\"}"[..]),
                (b"mETA", &[][..]),
                (b"zzzz", &[0xffu8; 37][..]),
                (b"tILE", &b"IEND\0\0\0\0"[..]),
            ] {
                let mut t = s.clone();
                t.splice(at..at, chunk(kind, payload));
                let stream = container::parse(&t).expect("optional chunk is skipped");
                assert_eq!(stream.skipped, vec![(*kind, at)]);
                assert_eq!(decode_latents(&t, model()).expect("decodes"), reference);
            }
            for kind in [b"XTRA", b"Meta", b"TILF", b"IEN\0", b"\0\0\0\0", b"1abc"] {
                let mut t = s.clone();
                t.splice(at..at, chunk(kind, b"payload"));
                assert!(
                    matches!(
                        container::parse(&t),
                        Err(ContainerError::UnknownRequiredChunk { .. })
                    ),
                    "{:?} accepted",
                    String::from_utf8_lossy(kind)
                );
                assert!(matches!(
                    decode(&t, model()),
                    Err(CodecError::Container(
                        ContainerError::UnknownRequiredChunk { .. }
                    ))
                ));
            }
        }
    }
}

/// (d) An optional chunk whose length runs past the end of the stream is an error.
#[test]
fn optional_chunk_with_bad_length_is_rejected() {
    let s = &streams()[1];
    let iend = s.len() - 8;
    for len in [9u32, 100, u32::MAX] {
        let mut t = s.clone();
        let mut c = b"meta".to_vec();
        c.extend_from_slice(&len.to_le_bytes());
        c.extend_from_slice(b"12345678");
        t.splice(iend..iend, c);
        assert!(container::parse(&t).is_err(), "length {len}");
        assert!(decode(&t, model()).is_err());
    }
}

/// Header fields at their limits (spec 6.2) are rejected before any large allocation.
#[test]
fn oversized_headers_are_rejected_cheaply() {
    let s = &streams()[0];
    let body = &s[header_len(s)..];
    for (w, h, tw, th, level) in [
        (8193u32, 1u32, 64u32, 64u32, 1u8),
        (8192, 8192, 2048, 2048, 1),
        (u32::MAX, u32::MAX, 64, 64, 2),
        (32769, 1, 64, 64, 2),
        (64, 64, 4096, 4096, 2),
        (64, 64, 0, 64, 1),
        (64, 64, 63, 64, 1),
        (64, 64, 128, 64, 1),
        (0, 64, 64, 64, 1),
    ] {
        let mut t = s[..header_len(s)].to_vec();
        t[7] = level;
        t[8..12].copy_from_slice(&w.to_le_bytes());
        t[12..16].copy_from_slice(&h.to_le_bytes());
        t[16..20].copy_from_slice(&tw.to_le_bytes());
        t[20..24].copy_from_slice(&th.to_le_bytes());
        t.extend_from_slice(body);
        assert!(
            matches!(
                container::parse(&t),
                Err(ContainerError::InvalidField { .. })
            ),
            "{w}x{h} tile {tw}x{th} level {level}"
        );
    }
    // Within the level but with too few tiles: rejected by the tile count, not decoded.
    let mut t = s[..header_len(s)].to_vec();
    t[8..12].copy_from_slice(&8192u32.to_le_bytes());
    t[12..16].copy_from_slice(&4096u32.to_le_bytes());
    t[16..20].copy_from_slice(&2048u32.to_le_bytes());
    t[20..24].copy_from_slice(&2048u32.to_le_bytes());
    t.extend_from_slice(body);
    assert!(matches!(
        container::parse(&t),
        Err(ContainerError::TileCount { .. })
    ));
}

fn regressions_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions")
}

/// Replays every input that `.ci/fuzz.sh` saved in `fuzz/regressions/` (crashes and hangs
/// of either fuzz target): parse and full decode must return without panicking.
#[test]
fn fuzz_regressions_replay() {
    let dir = regressions_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut n = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !path.is_file() || name.starts_with('.') || name.starts_with("README") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        eprintln!("replaying {}", path.display());
        if name.starts_with("fuzz_model") {
            // the model-file target (fuzz/src/lib.rs fuzz_model)
            if let Ok(m) = Model::from_bytes(&bytes) {
                assert!(m.latent_channels() > 0 && m.hyper_channels() > 0);
            }
            n += 1;
            continue;
        }
        let _ = container::parse(&bytes);
        // The same guard as the fuzz target: only small images are synthesised.
        check(&bytes);
        n += 1;
    }
    eprintln!("{n} regression inputs replayed");
}

/// A stream's model name never selects a file outside the model directory (issue 20 item 1):
/// `decode` and `task-run` refuse names that are not plain, whatever exists at that path,
/// and look plain names up only in `--model-dir`.
#[test]
fn a_stream_cannot_choose_the_file_the_decoder_opens() {
    let dir = crate::common::fresh_dir("robustness_model_name");
    let small = crate::common::root().join("conformance/models/test-seed1-small.safetensors");
    let model = Model::from_path(&small).expect("model");
    let bytes = encode(&synthetic(40, 30), &model, &EncodeOptions::default()).expect("encode");
    let stream = container::parse(&bytes).expect("parse");
    let tiles = stream
        .tiles
        .iter()
        .map(|t| t.to_coded())
        .collect::<Vec<_>>();
    let named = |name: &str| {
        let mut header = stream.header.clone();
        header.model_name = name.to_string();
        let path = dir.join(format!("{}.icm", name.len()));
        std::fs::write(&path, container::write(&header, &tiles, false)).expect("write");
        path
    };
    let model_dir = crate::common::root().join("models");
    for name in [
        "/etc/passwd",
        "/nonexistent/model",
        "../conformance/models/test-seed1-small",
        small.to_str().expect("utf-8"),
    ] {
        let path = named(name);
        for args in [
            vec!["decode", path.to_str().expect("utf-8"), "--hash"],
            vec![
                "task-run",
                "--task",
                "classification",
                path.to_str().expect("utf-8"),
            ],
        ] {
            let mut args = args.clone();
            args.extend(["--model-dir", model_dir.to_str().expect("utf-8")]);
            let out = crate::common::icm(&args, &[]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{name}: {args:?} succeeded");
            assert!(err.contains("not a plain name"), "{name}: {err}");
        }
    }
    // the same stream with a plain name is found in the model directory given
    let path = named("test-seed1-small");
    let out = crate::common::icm(
        &[
            "decode",
            path.to_str().expect("utf-8"),
            "--hash",
            "--model-dir",
            small.parent().and_then(|p| p.to_str()).expect("dir"),
        ],
        &[],
    );
    crate::common::ok(&out, "plain name in --model-dir");
}

/// A stream of empty payloads declaring `w x h` in 1024x1024 tiles (empty payloads are
/// conforming: every symbol decodes as 0).
fn empty_stream(model: &Model, w: u32, h: u32) -> Vec<u8> {
    let bytes = encode(&synthetic(8, 8), model, &EncodeOptions::default()).expect("encode");
    let mut header = container::parse(&bytes).expect("parse").header;
    header.width = w;
    header.height = h;
    header.level = icm::container::Level::lowest_for(w, h).expect("level").idc;
    header.tile_width = 1024.min(w.div_ceil(64) * 64);
    header.tile_height = 1024.min(h.div_ceil(64) * 64);
    let tiles = header.tiling().count();
    container::write(
        &header,
        &vec![container::CodedTile::default(); tiles],
        false,
    )
}

/// Issue 20 item 3: a decode bomb (1 KB declaring 16384x16384 at level 2) is refused by
/// --max-pixels and --max-memory before any work, and a stream within the limits decodes.
#[test]
fn decode_limits_refuse_a_bomb_before_any_work() {
    let dir = crate::common::fresh_dir("robustness_decode_limits");
    let small = crate::common::root().join("conformance/models/test-seed1-small.safetensors");
    let model = Model::from_path(&small).expect("model");
    let bomb = dir.join("bomb.icm");
    std::fs::write(&bomb, empty_stream(&model, 16384, 16384)).expect("write");
    assert!(std::fs::metadata(&bomb).expect("bomb").len() < 8192);
    let never_png = dir.join("never.png");
    let never_jpg = dir.join("never.jpg");
    let run = |out: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "decode",
            bomb.to_str().expect("utf-8"),
            "-o",
            out.to_str().expect("utf-8"),
            "--model",
            small.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(extra);
        crate::common::icm(&args, &[])
    };
    let out = run(&never_png, &["--max-pixels", "16777216"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("268435456 pixels") && err.contains("16777216"),
        "{err}"
    );
    assert!(err.starts_with("error: limit\n"), "{err}");
    // PNG is written band by band: the latents (100 MB), one band of 2048-row tiles and
    // the synthesis of a tile, 323 MB, are over 256 MiB.
    let out = run(&never_png, &["--max-memory", "256M"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("memory") && err.contains("268435456"), "{err}");
    // JPEG holds the whole picture (805 MB more): over 512 MiB.
    let out = run(&never_jpg, &["--max-memory", "512M"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("memory") && err.contains("536870912"), "{err}");
    assert!(!never_png.exists() && !never_jpg.exists());
    // latents only (no -o): the pixel limit holds there too
    let out = crate::common::icm(
        &[
            "decode",
            bomb.to_str().expect("utf-8"),
            "--hash",
            "--model",
            small.to_str().expect("utf-8"),
            "--max-pixels",
            "16777216",
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("268435456 pixels"),
        "{err}"
    );

    // the same kind of stream, small: the limits plan and allow it
    let ok_stream = dir.join("small.icm");
    std::fs::write(&ok_stream, empty_stream(&model, 300, 200)).expect("write");
    let out = crate::common::icm(
        &[
            "decode",
            ok_stream.to_str().expect("utf-8"),
            "--hash",
            "--model",
            small.to_str().expect("utf-8"),
            "--max-pixels",
            "60000",
            "--max-memory",
            "64M",
        ],
        &[],
    );
    crate::common::ok(&out, "a stream within the limits");
}

/// The plan: as many tiles in flight as the memory allows, at most the threads given, and
/// an error naming the need when not even one fits.
#[test]
fn decode_limits_choose_the_tiles_in_flight() {
    use icm::codec::{DecodeLimits, SYNTHESIS_BYTES_PER_PIXEL};
    let small = crate::common::root().join("conformance/models/test-seed1-small.safetensors");
    let model = Model::from_path(&small).expect("model");
    let bytes = empty_stream(&model, 4096, 1024);
    let header = container::parse(&bytes).expect("parse").header;
    let unlimited = DecodeLimits::default()
        .plan(&header, &model, true, 8)
        .expect("plan");
    assert_eq!(
        unlimited.tiles_in_flight, 4,
        "at most the 4 tiles' worth of threads"
    );
    let tile = 1024 * 1024 * SYNTHESIS_BYTES_PER_PIXEL;
    let fixed = unlimited.memory - 4 * tile;
    for (budget, want) in [
        (fixed + tile, 1),
        (fixed + 2 * tile + 1, 2),
        (fixed + 3 * tile, 3),
    ] {
        let limits = DecodeLimits {
            max_memory: budget,
            ..DecodeLimits::default()
        };
        let plan = limits.plan(&header, &model, true, 8).expect("plan");
        assert_eq!(plan.tiles_in_flight, want, "budget {budget}");
        assert!(plan.memory <= budget);
    }
    let tight = DecodeLimits {
        max_memory: fixed + tile - 1,
        ..DecodeLimits::default()
    };
    assert!(matches!(
        tight.plan(&header, &model, true, 8),
        Err(CodecError::LimitExceeded { needed, .. }) if needed == fixed + tile
    ));
    // latents only: no synthesis memory
    assert!(tight.plan(&header, &model, false, 8).is_ok());
}

/// `icm task-run` decodes untrusted input under the same limits as `icm decode`, for the
/// picture and the latents of a stream, and for the coefficients of a JPEG file; refused
/// before the network loads.
#[test]
fn task_run_decodes_under_the_limits() {
    let dir = crate::common::fresh_dir("robustness_task_run_limits");
    let models = crate::common::root().join("conformance/models");
    let model = Model::from_path(&models.join("test-seed1-small.safetensors")).expect("model");
    let bomb = dir.join("bomb.icm");
    std::fs::write(&bomb, empty_stream(&model, 16384, 16384)).expect("write");
    for domain in ["rgb", "latents"] {
        let out = crate::common::icm(
            &[
                "task-run",
                "--task",
                "classification",
                "--input-domain",
                domain,
                bomb.to_str().expect("utf-8"),
                "--model-dir",
                models.to_str().expect("utf-8"),
                "--max-pixels",
                "16777216",
            ],
            &[],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{domain}");
        assert!(
            err.contains("268435456 pixels") && err.contains("16777216"),
            "{domain}: {err}"
        );
    }
    let img = icm::testimage::synthetic(256, 256, 1);
    let jpeg = icm_eval::task::dct::encode_jpeg(&img, 75).expect("jpeg");
    let path = dir.join("a.jpg");
    std::fs::write(&path, jpeg).expect("write");
    // 256x256 4:2:0: 1536 blocks, 196,608 bytes of coefficients.
    let out = crate::common::icm(
        &[
            "task-run",
            "--task",
            "classification",
            "--input-domain",
            "dct24",
            path.to_str().expect("utf-8"),
            "--max-memory",
            "64K",
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("1536 blocks of 8x8 exceed the limit of 512"),
        "{err}"
    );
}

/// Version 1.1 (spec 4.5): every single-bit flip in a tile's z or y payload is reported as
/// `checksum-mismatch` before any decoding, where a 1.0 stream may decode it to other
/// latents; every flip anywhere in a TILE or tsum payload is refused.
#[test]
fn every_bit_flip_of_a_checksummed_tile_is_detected() {
    let img = synthetic(150, 70);
    let opts = EncodeOptions {
        tile: (64, 64),
        checksums: true,
        ..EncodeOptions::default()
    };
    let bytes = encode(&img, model(), &opts).expect("encode");
    let stream = container::parse(&bytes).expect("parse");
    assert_eq!(stream.header.minor, 1);
    assert_eq!(stream.verified_tiles, stream.tiles.len());
    let mut flips = 0;
    for t in &stream.tiles {
        let payload = t.offset + 8..t.offset + 8 + 8 + t.z.len() + t.y.len();
        // The TILE payload and the tsum chunk's CRC after it.
        let crc = payload.end + 8..payload.end + 12;
        for at in payload.clone().chain(crc) {
            for bit in 0..8 {
                let mut s = bytes.clone();
                s[at] ^= 1 << bit;
                let e = container::parse(&s).expect_err("a flipped bit was accepted");
                if at >= payload.start + 8 {
                    assert_eq!(e.class(), "checksum-mismatch", "byte {at} bit {bit}: {e}");
                }
                flips += 1;
            }
        }
    }
    assert!(flips > 1000, "{flips}");
    // Without checksums the same stream is 12 bytes per tile shorter and version 1.0.
    let plain = encode(
        &img,
        model(),
        &EncodeOptions {
            checksums: false,
            ..opts
        },
    )
    .expect("encode");
    assert_eq!(plain.len() + 12 * stream.tiles.len(), bytes.len());
    assert_eq!(container::parse(&plain).expect("parse").header.minor, 0);
}
