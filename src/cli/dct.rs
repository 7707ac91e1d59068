//! `icm dct`: JPEG to DCT-coefficient frequency channels (spec Annex B).

use super::args::{jpeg_options, DctArgs};
use super::error::CliError;
use super::io::{read, write_atomic};
use icm_eval::jpeg::channels::{frequency_tensor, parse_channels, TensorLayout};
use icm_eval::jpeg::{decode_coefficients, DecodeOptions, Process};
use std::time::Instant;

/// Runs `icm dct`.
pub fn run(a: DctArgs) -> Result<(), CliError> {
    let layout = match a.layout.as_str() {
        "hwc" => TensorLayout::Hwc,
        _ => TensorLayout::Chw,
    };
    let bytes = read(&a.input)?;
    let start = Instant::now();
    let opts = DecodeOptions {
        lenient: a.lenient,
        ..jpeg_options(a.max_memory)
    };
    let jpeg_err = |source| CliError::Jpeg {
        path: a.input.display().to_string(),
        source,
    };
    let coefs = decode_coefficients(&bytes, &opts).map_err(jpeg_err)?;
    // Lenient decoding: what was repaired, and where (the list is empty in strict mode).
    for w in &coefs.warnings {
        eprintln!("warning: {}: {w}", a.input.display());
    }
    let channels = parse_channels(&a.channels, coefs.components.len())
        .map_err(|e| CliError::Usage(format!("--channels {:?}: {e}", a.channels)))?;
    let (shape, values) =
        frequency_tensor(&coefs, &channels, !a.raw, layout, opts.max_tensor_bytes)
            .map_err(jpeg_err)?;
    let secs = start.elapsed().as_secs_f64();
    let (npy, dtype) = if a.raw {
        // Raw values are the file's 16-bit coefficients: the conversion is exact.
        let v: Vec<i16> = values.iter().map(|&x| x as i16).collect();
        (icm_eval::npy::npy_i16(&shape, &v), "int16 quantised")
    } else {
        (icm_eval::npy::npy_i32(&shape, &values), "int32 dequantised")
    };
    write_atomic(&a.output, &npy)?;
    let process = match coefs.process {
        Process::Baseline => "baseline",
        Process::ExtendedSequential => "extended sequential",
        Process::Progressive => "progressive",
    };
    let sampling: Vec<String> = coefs
        .components
        .iter()
        .map(|c| format!("{}x{}", c.h, c.v))
        .collect();
    println!(
        "{}: {}x{} {process} JPEG, sampling {}, {dtype} {} shape {shape:?}, {:.3} s",
        a.output.display(),
        coefs.width,
        coefs.height,
        sampling.join(","),
        a.layout,
        secs
    );
    Ok(())
}
