//! `icm_import::compressai`: seeded CompressAI-shaped state dicts and a real CompressAI
//! checkpoint become icm model files that load, encode and decode (spec 7.2.1, 12.5).

use icm::codec::{decode, encode, EncodeOptions};
use icm::model::Architecture;
use icm::testimage::synthetic;
use icm_import::compressai::{import, CompressaiArch, ImportOptions, TableSource};
use icm_import::seeded::seeded_state_dict;
use icm_import::ImportError;

fn options(arch: CompressaiArch) -> ImportOptions {
    ImportOptions {
        arch,
        name: format!("test-{}", arch.name()),
        quality: Some(3),
        calibration: vec![synthetic(128, 128, 1), synthetic(96, 160, 2)],
        calibration_source: "synthetic".into(),
        f16: false,
        extra: Default::default(),
    }
}

#[test]
fn seeded_models_of_both_families_import_and_round_trip() {
    for arch in CompressaiArch::ALL {
        let state = seeded_state_dict(arch, 8, 12, 4);
        let (bytes, model, report) = import(&state, &options(arch)).expect("import");
        assert_eq!((report.n, report.m), (8, 12));
        assert_eq!(report.z_tables, TableSource::Rebuilt);
        assert_eq!(report.y_tables, TableSource::Rebuilt);
        assert!(report.act_max.iter().all(|a| *a > 0.0));
        assert_eq!(model.architecture, arch.architecture());
        assert_eq!(model.latent_channels(), 12);
        let median = model.h_s.median().expect("z.median");
        assert!(median.iter().any(|&m| m != 0), "seeded medians are not 0");
        // The same import gives the same bytes (deterministic model files).
        assert_eq!(import(&state, &options(arch)).expect("again").0, bytes);

        let img = synthetic(150, 90, 9);
        let stream = encode(&img, &model, &EncodeOptions::default()).expect("encode");
        let d = decode(&stream, &model).expect("decode");
        assert_eq!((d.image.width, d.image.height), (150, 90));
        if arch == CompressaiArch::Bmshj2018Hyperprior {
            // Scale-only: every y^ is a multiple of 256 (means 0, spec 9.4, 10).
            assert!(d.latents.tiles[0].y.iter().all(|v| v % 256 == 0));
        }
    }
}

#[test]
fn the_other_family_is_refused_with_the_reason() {
    let state = seeded_state_dict(CompressaiArch::Mbt2018Mean, 8, 12, 1);
    let err = import(&state, &options(CompressaiArch::Bmshj2018Hyperprior)).unwrap_err();
    assert!(
        matches!(&err, ImportError::BadTensor { name, .. } if name == "h_s.4.weight"),
        "{err}"
    );
    let mut state = seeded_state_dict(CompressaiArch::Mbt2018Mean, 8, 12, 1);
    state.remove("g_s.3.gamma");
    let err = import(&state, &options(CompressaiArch::Mbt2018Mean)).unwrap_err();
    assert!(
        matches!(&err, ImportError::Missing { name, .. } if name == "g_s.3.gamma"),
        "{err}"
    );
}

/// GDN parameters are stored reparametrised by CompressAI: the model file holds
/// `max(x, bound)^2 - pedestal` (spec 12.5).
#[test]
fn gdn_parameters_are_converted() {
    let arch = CompressaiArch::Bmshj2018Hyperprior;
    let state = seeded_state_dict(arch, 8, 12, 2);
    let (_, model, _) = import(&state, &options(arch)).expect("import");
    let stored = state["g_s.1.beta"].to_f32();
    let icm::transform::Layer::Gdn(gdn) = &model.g_s.layers[1] else {
        panic!("g_s.1 is an IGDN");
    };
    let pedestal = 2f32.powi(-36);
    let bound = ((1e-6 + f64::from(pedestal)).sqrt()) as f32;
    for (x, b) in stored.iter().zip(&gdn.beta) {
        assert_eq!(*b, x.max(bound) * x.max(bound) - pedestal);
    }
}

/// A checkpoint written by torch from a real CompressAI `MeanScaleHyperprior(N=2, M=3)`
/// after `update()` (tests/data/make_fixtures.py): the z and y tables are CompressAI's.
#[test]
fn a_real_compressai_checkpoint_imports_with_its_own_tables() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for file in ["compressai_msh.pt", "compressai_msh_legacy.pt"] {
        let bytes = std::fs::read(dir.join(file)).expect("fixture");
        let state = icm_import::torch::state_dict(&bytes).expect("state dict");
        let (_, model, report) =
            import(&state, &options(CompressaiArch::Mbt2018Mean)).expect("import");
        assert_eq!(report.z_tables, TableSource::Checkpoint, "{file}");
        assert_eq!(report.y_tables, TableSource::Checkpoint, "{file}");
        assert_eq!(model.architecture, Architecture::Mbt2018Mean);
        // Table c of z is CompressAI's quantised CDF of channel c (spec 12.5).
        let cdf = state["entropy_bottleneck._quantized_cdf"]
            .to_i64()
            .expect("ints");
        let len = state["entropy_bottleneck._cdf_length"]
            .to_i64()
            .expect("ints");
        let offset = state["entropy_bottleneck._offset"].to_i64().expect("ints");
        let width = state["entropy_bottleneck._quantized_cdf"].shape[1];
        for (c, (off, table)) in model.z_tables.iter().enumerate() {
            assert_eq!(i64::from(*off), offset[c]);
            assert_eq!(table.len() as i64, len[c] - 1);
            for s in 0..table.len() {
                let f = cdf[c * width + s + 1] - cdf[c * width + s];
                assert_eq!(
                    i64::from(table.frequency(s)),
                    f,
                    "{file} z table {c} symbol {s}"
                );
            }
        }
        let img = synthetic(64, 64, 3);
        let stream = encode(&img, &model, &EncodeOptions::default()).expect("encode");
        decode(&stream, &model).expect("decode");
    }
}
