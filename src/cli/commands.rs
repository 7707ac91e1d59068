use super::args::{
    Cli, Command, DecodeArgs, InfoArgs, ModelBuildArgs, ModelCommand, ModelInfoArgs,
};
use super::error::CliError;
use super::eval;
use super::io::{check_outputs, image_bytes, read, write_atomic, Commit};
use icm::codec::{self, DEFAULT_TILE};
use icm::container::{self, Stream};
use icm::model::{self, BuildOptions, Model};
use icm_eval::picture::{stream_picture, OutputFormat};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Runs one command.
pub fn run(cli: Cli) -> Result<(), CliError> {
    super::io::remove_temporaries_on_signal();
    if let Some(n) = threads(&cli.command) {
        rayon::ThreadPoolBuilder::new()
            .num_threads(usize::from(n))
            .build_global()
            .map_err(|e| CliError::Usage(format!("--threads: {e}")))?;
    }
    let dir = model_dir(&cli.command)
        .cloned()
        .unwrap_or_else(model::default_model_dir);
    let outputs = output_paths(&cli.command);
    check_outputs(&outputs)?;
    check_not_inputs(&outputs, &input_paths(&cli.command))?;
    if let Command::Decode(DecodeArgs {
        output: Some(path), ..
    }) = &cli.command
    {
        OutputFormat::from_path(path)?;
    }
    match cli.command {
        Command::Encode(a) => super::encode::run(a, &dir),
        Command::Decode(a) => decode(a, &dir),
        Command::Info(a) => info(a),
        Command::Model(ModelCommand::Build(a)) => model_build(a),
        Command::Model(ModelCommand::Info(a)) => model_info(a, &dir),
        Command::Model(ModelCommand::Import(a)) => super::import::run(a),
        Command::Eval(a) => eval::run(a, &dir),
        Command::BdRate(a) => super::bd_rate::run(a),
        Command::Conformance(a) => super::conformance::run(a),
        Command::Anchor(a) => super::anchor::run(a),
        Command::Plot(a) => super::plot::run(a),
        Command::TaskEval(a) => super::task_eval::run(a, &dir),
        Command::TaskRun(a) => super::task_run::run(a, &dir),
        Command::Dct(a) => super::dct::run(a),
        Command::Bench(a) => super::bench::run(a, &dir),
    }
}

/// `--threads` of the commands that take it.
fn threads(command: &Command) -> Option<u16> {
    match command {
        Command::Encode(a) => a.threads.threads,
        Command::Decode(a) => a.threads.threads,
        Command::Eval(a) => a.threads.threads,
        Command::Bench(a) => a.threads.threads,
        Command::TaskEval(a) => a.threads.threads,
        Command::TaskRun(a) => a.threads.threads,
        Command::Conformance(a) => a.threads.threads,
        Command::Model(ModelCommand::Import(a)) => a.threads.threads,
        _ => None,
    }
}

/// `--model-dir` of the commands that take it.
fn model_dir(command: &Command) -> Option<&PathBuf> {
    match command {
        Command::Encode(a) => a.model_dir.model_dir.as_ref(),
        Command::Decode(a) => a.model_dir.model_dir.as_ref(),
        Command::Eval(a) => a.model_dir.model_dir.as_ref(),
        Command::Bench(a) => a.model_dir.model_dir.as_ref(),
        Command::TaskEval(a) => a.model_dir.model_dir.as_ref(),
        Command::TaskRun(a) => a.model_dir.model_dir.as_ref(),
        Command::Model(ModelCommand::Info(a)) => a.model_dir.model_dir.as_ref(),
        _ => None,
    }
}

/// The files a command reads that an output could overwrite.
fn input_paths(command: &Command) -> Vec<PathBuf> {
    match command {
        Command::Encode(a) => vec![a.input.clone()],
        Command::Decode(a) => vec![a.input.clone()],
        Command::Dct(a) => vec![a.input.clone()],
        Command::TaskRun(a) => vec![a.input.clone()],
        Command::Model(ModelCommand::Build(a)) => vec![PathBuf::from(&a.input)],
        Command::Model(ModelCommand::Import(a)) => vec![a.checkpoint.clone()],
        Command::Plot(a) => a.inputs.clone(),
        _ => Vec::new(),
    }
}

/// Refuses an output that is one of the command's inputs (`decode X.icm -o X.icm` would
/// destroy the stream it reads), or the same file named twice.
fn check_not_inputs(outputs: &[Option<PathBuf>], inputs: &[PathBuf]) -> Result<(), CliError> {
    // the file itself where it exists, else the absolute path it would be created at
    let real = |p: &Path| {
        std::fs::canonicalize(p)
            .or_else(|_| std::path::absolute(p))
            .ok()
    };
    let outputs: Vec<&PathBuf> = outputs.iter().flatten().collect();
    for (i, out) in outputs.iter().enumerate() {
        let Some(o) = real(out) else { continue };
        if let Some(input) = inputs.iter().find(|p| real(p).as_ref() == Some(&o)) {
            return Err(CliError::Usage(format!(
                "{}: is also the input {}; choose another output",
                out.display(),
                input.display()
            )));
        }
        if let Some(other) = outputs[i + 1..]
            .iter()
            .find(|p| real(p).as_ref() == Some(&o))
        {
            return Err(CliError::Usage(format!(
                "{} and {} are the same file",
                out.display(),
                other.display()
            )));
        }
    }
    Ok(())
}

/// Every file a command will write, so that [`check_outputs`] can refuse a bad path before
/// any work starts.
fn output_paths(command: &Command) -> Vec<Option<PathBuf>> {
    let file = |p: &PathBuf| Some(p.clone());
    match command {
        Command::Encode(a) => vec![file(&a.output)],
        Command::Decode(a) => vec![a.output.clone(), a.latents.clone(), a.latents_raw.clone()],
        Command::Model(ModelCommand::Build(a)) => vec![file(&a.file.output)],
        Command::Model(ModelCommand::Import(a)) => vec![file(&a.file.output)],
        Command::Eval(a) => vec![a.output.clone(), a.csv.clone()],
        Command::Anchor(a) => vec![a.output.clone(), a.csv.clone()],
        Command::Plot(a) => vec![file(&a.output)],
        Command::TaskEval(a) => vec![
            a.output.clone(),
            a.csv.clone(),
            // PREFIX-<label>.json: the folder of the prefix must take new files
            a.save_detections
                .as_ref()
                .map(|p| PathBuf::from(format!("{}-check.json", p.display()))),
        ],
        Command::TaskRun(a) => vec![a.output.clone()],
        Command::Bench(a) => vec![a.output.clone()],
        Command::Dct(a) => vec![file(&a.output)],
        Command::Info(_)
        | Command::Model(ModelCommand::Info(_))
        | Command::BdRate(_)
        | Command::Conformance(_) => Vec::new(),
    }
}

/// `--tile WxH` or `N` ([`codec::parse_tile_size`]): multiples of 64 up to the largest
/// tile of any level (spec 5.2, 6.2), refused otherwise rather than rounded.
pub(super) fn parse_tile(s: Option<&str>) -> Result<(u32, u32), CliError> {
    match s {
        None => Ok((DEFAULT_TILE, DEFAULT_TILE)),
        Some(s) => codec::parse_tile_size(s).map_err(|e| CliError::Usage(format!("--tile {e}"))),
    }
}

pub(super) fn load_model(
    spec: Option<&str>,
    quality: Option<u8>,
    dir: &Path,
) -> Result<Model, CliError> {
    let path = model::resolve_model(spec, quality, dir)?;
    Ok(Model::from_path(&path)?)
}

fn parse_stream<'a>(path: &Path, bytes: &'a [u8]) -> Result<Stream<'a>, CliError> {
    container::parse(bytes).map_err(|source| CliError::Container {
        path: path.display().to_string(),
        source,
    })
}

fn decode(a: DecodeArgs, dir: &Path) -> Result<(), CliError> {
    if a.output.is_none() && a.latents.is_none() && a.latents_raw.is_none() && !a.hash {
        return Err(CliError::Usage(
            "nothing to do: give -o OUT.png, --latents OUT.npy, --latents-raw OUT or --hash".into(),
        ));
    }
    let bytes = read(&a.input)?;
    let stream = parse_stream(&a.input, &bytes)?;
    let model = match a.model.as_deref() {
        Some(m) => load_model(Some(m), None, dir)?,
        None => Model::from_path(&model::find_named_model(&stream.header.model_name, dir)?)?,
    };
    let codec_err = |source| CliError::Codec {
        path: a.input.display().to_string(),
        source,
    };
    let start = Instant::now();
    let limits = a.limits.decode_limits();
    // Every output is made first and all are committed together, or none. A PNG or PPM
    // picture is written band by band as it is decoded, never held whole.
    let mut commit = Commit::default();
    let mut report = Vec::new();
    let (w, h) = (stream.header.width, stream.header.height);
    let latents = match &a.output {
        Some(path) if OutputFormat::from_path(path)?.streams() => {
            let format = OutputFormat::from_path(path)?;
            let file = std::io::BufWriter::new(commit.create(path)?);
            stream_picture(format, file, w, h, |sink| {
                codec::decode_stream_rows(&stream, &model, &limits, &mut |band| sink(band.data))
            })
            .map_err(|source| CliError::Io {
                path: path.display().to_string(),
                source,
            })?
            .map_err(codec_err)?
        }
        Some(path) => {
            let d = codec::decode_stream_limited(&stream, &model, &limits).map_err(codec_err)?;
            commit.add(path, &image_bytes(path, &d.image)?)?;
            d.latents
        }
        None => {
            codec::decode_stream_latents_limited(&stream, &model, &limits).map_err(codec_err)?
        }
    };
    let secs = start.elapsed().as_secs_f64();
    if let Some(path) = &a.output {
        report.push(format!("{}: {w}x{h}, {secs:.3} s", path.display()));
    }
    if let Some(path) = &a.latents {
        let m = latents.y_mosaic(&stream.header.tiling());
        let shape = [m.channels, m.height, m.width];
        commit.add(path, &icm_eval::npy::npy_i32(&shape, &m.data))?;
        report.push(format!(
            "{}: y^ int32 (units of 1/256), shape {shape:?}",
            path.display()
        ));
    }
    if let Some(path) = &a.latents_raw {
        commit.add(path, &latents.serialise())?;
    }
    commit.finish()?;
    for line in report {
        println!("{line}");
    }
    if a.hash {
        println!("latents sha256 {}", latents.sha256_hex());
    }
    Ok(())
}

fn info(a: InfoArgs) -> Result<(), CliError> {
    let bytes = read(&a.input)?;
    let s = parse_stream(&a.input, &bytes)?;
    let h = &s.header;
    let tiling = h.tiling();
    let bpp = bytes.len() as f64 * 8.0 / (f64::from(h.width) * f64::from(h.height));
    let skipped: Vec<String> = s
        .skipped
        .iter()
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .collect();
    if a.json {
        println!("{}", icm_eval::info::stream_info(&s));
    } else {
        println!("file           {}", a.input.display());
        println!("version        {}.{}", h.major, h.minor);
        println!("profile        {} (Main)", h.profile);
        println!("level          {}", h.level);
        println!("size           {}x{}", h.width, h.height);
        println!("colour format  rgb8");
        println!(
            "tiles          {} ({}x{} of {}x{})",
            tiling.count(),
            tiling.columns(),
            tiling.rows(),
            h.tile_width,
            h.tile_height
        );
        println!("model          {}", h.model_name);
        println!("model sha256   {}", h.model_sha256_hex());
        println!("quality        {}", h.quality);
        println!("bytes          {} ({bpp:.4} bpp)", bytes.len());
        println!(
            "checksums      {} of {} tiles verified (CRC-32C, spec 4.5)",
            s.verified_tiles,
            tiling.count()
        );
        let stepped: Vec<_> = s.tiles.iter().filter_map(|t| t.steps.as_ref()).collect();
        if !stepped.is_empty() {
            let mut steps: Vec<u16> = stepped.iter().flat_map(|c| c.steps.clone()).collect();
            steps.sort_unstable();
            steps.dedup();
            let steps: Vec<String> = steps
                .iter()
                .map(|&d| format!("{}", f64::from(d) / 256.0))
                .collect();
            println!(
                "step maps      {} of {} tiles (spec 4.6); steps {}",
                stepped.len(),
                tiling.count(),
                steps.join(", ")
            );
        }
        if !skipped.is_empty() {
            println!("skipped chunks {}", skipped.join(", "));
        }
    }
    Ok(())
}

fn model_build(a: ModelBuildArgs) -> Result<(), CliError> {
    let export = if let Some(seed) = a.input.strip_prefix("seed:") {
        let (seed, small) = match seed.strip_suffix(":small") {
            Some(s) => (s, true),
            None => (seed, false),
        };
        let seed: u64 = seed
            .parse()
            .map_err(|_| CliError::Usage(format!("bad seed in {:?}", a.input)))?;
        let widths = if small {
            (16, 24, [16, 16, 16])
        } else {
            (96, 192, [128, 96, 64])
        };
        model::random_float_export(seed, widths)
    } else {
        read(&PathBuf::from(&a.input))?
    };
    let bytes = model::build_model_file(
        &export,
        &BuildOptions {
            name: a.file.name.clone(),
            quality: a.file.quality,
            extra: a.file.extra()?,
        },
    )?;
    let m = Model::from_bytes(&bytes)?;
    write_atomic(&a.file.output, &bytes)?;
    println!(
        "{}: model {} sha256 {} ({} bytes)",
        a.file.output.display(),
        m.name,
        m.sha256_hex(),
        bytes.len()
    );
    Ok(())
}

fn model_info(a: ModelInfoArgs, dir: &Path) -> Result<(), CliError> {
    let m = load_model(Some(&a.model), None, dir)?;
    if a.json {
        let v = serde_json::json!({
            "name": m.name,
            "sha256": m.sha256_hex(),
            "quality": m.quality,
            "N": m.hyper_channels(),
            "M": m.latent_channels(),
            "encoder": m.g_a.is_some() && m.h_a.is_some(),
            "metadata": m.metadata,
        });
        println!("{v}");
    } else {
        println!("name      {}", m.name);
        println!("sha256    {}", m.sha256_hex());
        println!("quality   {}", m.quality);
        println!("N, M      {}, {}", m.hyper_channels(), m.latent_channels());
        println!(
            "encoder   {}",
            if m.g_a.is_some() {
                "yes"
            } else {
                "no (decoder only)"
            }
        );
        for (k, v) in &m.metadata {
            println!("meta      {k} = {v}");
        }
    }
    Ok(())
}
