//! `icm anchor`: conventional codecs through ffmpeg, measured like `icm eval`.

use super::args::AnchorArgs;
use super::error::CliError;
use super::io::{read_image, write_atomic, write_image};
use super::progress::Progress;
use super::results::{image_result, list_pngs, print_table, rd_results, write_outputs};
use icm_eval::anchor::{
    colour, default_cache_dir, format_level, AnchorCache, AnchorCodec, AnchorConfig, Family,
};
use icm_eval::results::{AnchorInfo, ImageRow, Quality, RatePointInfo};

/// Parses the rate-parameter list: replaces the default ladder, or extends it when it
/// starts with '+'. Sorted from the highest quality down, duplicates removed.
pub(super) fn parse_levels(codec: AnchorCodec, spec: Option<&str>) -> Result<Vec<f64>, CliError> {
    let mut levels = codec.default_levels();
    if let Some(spec) = spec {
        let (extend, list) = match spec.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, spec),
        };
        let (lo, hi) = codec.level_range();
        let parsed: Vec<f64> =
            list.split(',')
                .map(|v| {
                    v.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|l| {
                            (lo..=hi).contains(l) && (!codec.integer_levels() || l.fract() == 0.0)
                        })
                        .ok_or_else(|| {
                            CliError::Usage(format!(
                            "--qps {spec:?}: {v:?} is not a valid {} for {codec} ({lo}..={hi}{})",
                            codec.level_name(),
                            if codec.integer_levels() { ", integer" } else { "" }
                        ))
                        })
                })
                .collect::<Result<_, _>>()?;
        if extend {
            levels.extend(parsed);
        } else {
            levels = parsed;
        }
    }
    // Highest quality first: ascending QP/CRF/qscale/distance, descending WebP quality.
    levels.sort_by(|a, b| a.total_cmp(b));
    levels.dedup();
    if codec == AnchorCodec::Webp {
        levels.reverse();
    }
    Ok(levels)
}

/// Runs `icm anchor`.
pub fn run(a: AnchorArgs) -> Result<(), CliError> {
    let codec = AnchorCodec::parse(&a.codec).ok_or_else(|| {
        let all: Vec<&str> = AnchorCodec::ALL.iter().map(|c| c.name()).collect();
        CliError::Usage(format!(
            "--codec {:?}: expected one of {}",
            a.codec,
            all.join(", ")
        ))
    })?;
    let levels = parse_levels(codec, a.qps.as_deref())?;
    let config = AnchorConfig::new(
        codec,
        a.ffmpeg.as_deref(),
        Some(a.preset.clone()),
        a.encoder_cmd.clone(),
    )?;
    let cache = (!a.no_cache)
        .then(|| AnchorCache::new(a.cache_dir.clone().unwrap_or_else(default_cache_dir)));
    let mut images = list_pngs(&a.dataset)?;
    if let Some(n) = a.limit {
        images.truncate(n);
    }
    if images.is_empty() {
        return Err(CliError::Dataset {
            path: a.dataset.display().to_string(),
            why: "no PNG images to code".into(),
        });
    }
    if let Some(dir) = &a.keep {
        std::fs::create_dir_all(dir).map_err(|source| CliError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    }

    let bar = Progress::new(images.len() * levels.len());
    let infos: Vec<RatePointInfo> = levels
        .iter()
        .map(|&l| RatePointInfo {
            codec: codec.name().to_string(),
            label: format!("{codec}-{}{}", codec.level_name(), format_level(l)),
            quality: Quality::from_f64(l),
            rate_parameter: Some(codec.level_name().to_string()),
            bytes: None,
            sha256: None,
            path: None,
            settings: Some(config.settings(l)),
        })
        .collect();
    let mut results: Vec<Vec<ImageRow>> = levels.iter().map(|_| Vec::new()).collect();
    let mut cached = 0usize;
    for path in &images {
        let img = read_image(path)?;
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let mut warned = false;
        for ((&level, info), out) in levels.iter().zip(&infos).zip(results.iter_mut()) {
            bar.set_message(format!(
                "{name} / {codec} {} {}",
                codec.level_name(),
                format_level(level)
            ));
            let anchor_err = |source| CliError::AnchorCoding {
                what: format!("{}: {}", path.display(), info.label),
                source,
            };
            let (coded, hit) = match &cache {
                Some(c) => c.code(&config, &img, level).map_err(anchor_err)?,
                None => (config.code(&img, level).map_err(anchor_err)?, false),
            };
            cached += usize::from(hit);
            if let Some(dir) = &a.keep {
                let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                let base = format!(
                    "{stem}.{codec}-{}{}",
                    codec.level_name(),
                    format_level(level)
                );
                write_atomic(
                    &dir.join(format!("{base}.{}", codec.extension())),
                    &coded.bitstream,
                )?;
                write_image(&dir.join(format!("{base}.png")), &coded.decoded)?;
            }
            out.push(image_result(
                info,
                path,
                &img,
                &coded.decoded,
                coded.bitstream.len(),
                coded.encode_s,
                coded.decode_s,
                &mut warned,
                &bar,
            )?);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();

    let colour_conversion = match codec.family() {
        Family::Video => colour::FORWARD_DESCRIPTION,
        Family::Image => {
            "8-bit RGB given to the encoder, which converts colour itself; \
            decoded to 8-bit RGB by ffmpeg (swscale flags accurate_rnd, full_chroma_int)"
        }
    };
    let description = format!(
        "{codec} anchor ({}; {} images of {})",
        config.ffmpeg_version,
        images.len(),
        a.dataset.display()
    );
    let anchor = AnchorInfo {
        codec: codec.name().to_string(),
        rate_parameter: codec.level_name().to_string(),
        ffmpeg: config.ffmpeg.display().to_string(),
        ffmpeg_version: config.ffmpeg_version.clone(),
        encoder_cmd: config.encoder_cmd.clone(),
        colour_conversion: colour_conversion.to_string(),
        timing: "wall time of the encoder and decoder processes, including process start".into(),
    };
    let file = rd_results(codec.name(), description, infos, results, Some(anchor));
    write_outputs(a.output.as_deref(), a.csv.as_deref(), &file)?;
    print_table(&file, images.len());
    if let Some(c) = &cache {
        eprintln!(
            "icm: {cached} of {} codings read from the cache {}",
            images.len() * levels.len(),
            c.dir().display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_lists() {
        let vvc = AnchorCodec::Vvc;
        assert_eq!(
            parse_levels(vvc, None).ok(),
            Some(vec![22.0, 27.0, 32.0, 37.0, 42.0, 47.0])
        );
        assert_eq!(
            parse_levels(vvc, Some("37,22")).ok(),
            Some(vec![22.0, 37.0])
        );
        assert_eq!(
            parse_levels(vvc, Some("+17,52")).ok().map(|l| l.len()),
            Some(8)
        );
        assert!(parse_levels(vvc, Some("64")).is_err());
        assert!(parse_levels(vvc, Some("30.5")).is_err());
        assert!(parse_levels(vvc, Some("")).is_err());
        assert_eq!(
            parse_levels(AnchorCodec::Jxl, Some("1.5")).ok(),
            Some(vec![1.5])
        );
        let webp = parse_levels(AnchorCodec::Webp, None).unwrap_or_default();
        assert!(webp.windows(2).all(|w| w[0] > w[1]));
    }
}
