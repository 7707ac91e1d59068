use super::{Expect, Vector};
use icm::codec::decode;
use icm::model::Model;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;

/// The result of one vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Vector name.
    pub name: String,
    /// What was checked.
    pub check: String,
    /// Whether the decoder passed.
    pub passed: bool,
    /// Why it failed, or the figures it passed with.
    pub detail: String,
    /// SHA-256 (Annex A) of the latents the decoder produced, when it produced any.
    pub latents_sha256: Option<String>,
    /// For a must-fail vector the decoder refused: whether its error class was compared
    /// with the expected one or only its exit status was checked. `None` for decodable
    /// vectors and for must-fail vectors the decoder did not refuse.
    pub fail_check: Option<FailCheck>,
}

/// How a refused must-fail vector was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailCheck {
    /// The decoder reported an error class and it was compared with the expected class.
    Class,
    /// The decoder exited non-zero but reported no class: only the exit status was checked.
    ExitOnly,
}

impl FailCheck {
    /// Stable name in `icm conformance --json`: `class` or `exit-only`.
    pub fn name(self) -> &'static str {
        match self {
            FailCheck::Class => "class",
            FailCheck::ExitOnly => "exit-only",
        }
    }
}

/// The error class a third-party decoder reported on its standard error: the rest of the
/// first line that starts with `error: ` (lower case, one space), with surrounding
/// whitespace removed; `None` when no line starts so. The class is compared exactly with
/// the names of spec 13 as `vectors.json` records them (`truncated`, `invalid-field`, ...).
pub fn reported_class(stderr: &str) -> Option<&str> {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("error: "))
        .map(str::trim)
}

/// The reconstruction tolerance of spec 11.3: every sample within 2 of the reference and
/// PSNR against the reference at least 50 dB. Returns `(passes, max_abs_diff, psnr)`.
pub fn within_tolerance(decoded: &[u8], reference: &[u8]) -> (bool, u8, f64) {
    if decoded.len() != reference.len() || decoded.is_empty() {
        return (false, 255, 0.0);
    }
    let mut max = 0u8;
    let mut sse = 0f64;
    for (&a, &b) in decoded.iter().zip(reference) {
        let d = a.abs_diff(b);
        max = max.max(d);
        sse += f64::from(d) * f64::from(d);
    }
    let mse = sse / decoded.len() as f64;
    let psnr = if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    };
    (max <= 2 && psnr >= 50.0, max, psnr)
}

fn sha256_hex(bytes: &[u8]) -> String {
    icm::hex::hex(&Sha256::digest(bytes))
}

fn read_png_rgb(path: &Path) -> Result<Vec<u8>, String> {
    crate::picture::read_rgb(path)
        .map(|i| i.data)
        .map_err(|e| e.to_string())
}

fn outcome(
    v: &Vector,
    check: &str,
    result: Result<String, String>,
    latents_sha256: Option<String>,
    fail_check: Option<FailCheck>,
) -> Outcome {
    let (passed, detail) = match result {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    Outcome {
        name: v.name.clone(),
        check: check.to_string(),
        passed,
        detail,
        latents_sha256,
        fail_check,
    }
}

fn check_name(v: &Vector) -> String {
    match &v.expect {
        Expect::Decode {
            reference: Some(_), ..
        } => "latents exact, reconstruction within tolerance".into(),
        Expect::Decode { .. } => "latents exact".into(),
        Expect::Fail { class } => format!("expected failure ({class})"),
    }
}

fn compare_reconstruction(
    reference: &Option<std::path::PathBuf>,
    pixels: &[u8],
) -> Result<String, String> {
    let Some(reference) = reference else {
        return Ok(String::new());
    };
    let want = read_png_rgb(reference)?;
    let (ok, max, psnr) = within_tolerance(pixels, &want);
    if ok {
        Ok(format!(
            ", reconstruction max diff {max}, PSNR {psnr:.1} dB"
        ))
    } else {
        Err(format!("reconstruction out of tolerance: max diff {max}, PSNR {psnr:.2} dB (need <= 2, >= 50 dB)"))
    }
}

/// Why the built-in decoder refused a vector: the class of spec 13 and the message.
struct Refusal {
    class: &'static str,
    message: String,
}

/// Checks the built-in decoder on one vector.
pub fn run_builtin(v: &Vector) -> Outcome {
    let mut produced = None;
    let mut fail_check = None;
    let result = (|| -> Result<String, String> {
        let stream =
            std::fs::read(&v.stream).map_err(|e| format!("{}: {e}", v.stream.display()))?;
        // The model is validated first (spec 13.1); an invalid one is the vector's error.
        let decoded: Result<_, Refusal> = match Model::from_path(&v.model) {
            Ok(model) => decode(&stream, &model).map_err(|e| Refusal {
                class: e.class(),
                message: e.to_string(),
            }),
            Err(e) => match e.class() {
                Some(class) => Err(Refusal {
                    class,
                    message: e.to_string(),
                }),
                None => return Err(e.to_string()),
            },
        };
        if decoded.is_err() && matches!(v.expect, Expect::Fail { .. }) {
            fail_check = Some(FailCheck::Class);
        }
        match (&v.expect, decoded) {
            (
                Expect::Decode {
                    latents_sha256,
                    reference,
                },
                Ok(d),
            ) => {
                let got = d.latents.sha256_hex();
                produced = Some(got.clone());
                if &got != latents_sha256 {
                    return Err(format!("latents sha256 {got}, expected {latents_sha256}"));
                }
                Ok(format!(
                    "latents match{}",
                    compare_reconstruction(reference, &d.image.data)?
                ))
            }
            (Expect::Decode { .. }, Err(e)) => Err(format!("decoding failed: {}", e.message)),
            (Expect::Fail { class }, Err(e)) if e.class == class => {
                Ok(format!("refused: {}", e.message))
            }
            (Expect::Fail { class }, Err(e)) => Err(format!(
                "refused as {} ({}), expected {class}",
                e.class, e.message
            )),
            (Expect::Fail { class }, Ok(d)) => {
                produced = Some(d.latents.sha256_hex());
                Err(format!("decoded a stream that must fail with {class}"))
            }
        }
    })();
    outcome(v, &check_name(v), result, produced, fail_check)
}

/// Checks a third-party decoder given as a command template on one vector. The template
/// is run by `sh -c` with `{in}`, `{model}`, `{out_latents}` and `{out_image}` replaced by
/// paths; the decoder writes the latents in the serialisation of Annex A to
/// `{out_latents}` and the reconstruction as PNG to `{out_image}`, and exits 0; for a
/// must-fail stream it exits non-zero and may report its error class on stderr (see
/// [`reported_class`]): a reported class must be the expected one, and without one only the
/// exit status is checked ([`FailCheck::ExitOnly`]). With `latents_only` the
/// reconstruction is not checked (a decoder of the normative part only).
pub fn run_external(v: &Vector, template: &str, scratch: &Path, latents_only: bool) -> Outcome {
    let mut produced = None;
    let mut fail_check = None;
    let result = (|| -> Result<String, String> {
        std::fs::create_dir_all(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        let lat = scratch.join(format!("{}.latents", v.name));
        let img = scratch.join(format!("{}.png", v.name));
        let _ = std::fs::remove_file(&lat);
        let _ = std::fs::remove_file(&img);
        let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
        let cmd = template
            .replace("{in}", &quote(&v.stream))
            .replace("{model}", &quote(&v.model))
            .replace("{out_latents}", &quote(&lat))
            .replace("{out_image}", &quote(&img));
        let out = Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .output()
            .map_err(|e| format!("cannot run decoder: {e}"))?;
        match &v.expect {
            Expect::Fail { class } => {
                if out.status.success() {
                    Err(format!(
                        "decoder exited 0 on a stream that must fail with {class}"
                    ))
                } else {
                    let code = out.status.code().unwrap_or(-1);
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    match reported_class(&stderr) {
                        Some(got) => {
                            fail_check = Some(FailCheck::Class);
                            if got == class {
                                Ok(format!("refused (exit {code}) as {got}"))
                            } else {
                                Err(format!(
                                    "refused (exit {code}) as {got:?}, expected {class}"
                                ))
                            }
                        }
                        None => {
                            fail_check = Some(FailCheck::ExitOnly);
                            Ok(format!(
                                "exit only: refused (exit {code}), no `error: CLASS` line on stderr"
                            ))
                        }
                    }
                }
            }
            Expect::Decode {
                latents_sha256,
                reference,
            } => {
                if !out.status.success() {
                    let err = String::from_utf8_lossy(&out.stderr);
                    return Err(format!(
                        "decoder failed (exit {}): {}",
                        out.status.code().unwrap_or(-1),
                        err.trim()
                    ));
                }
                let bytes = std::fs::read(&lat).map_err(|e| format!("no latents written: {e}"))?;
                let got = sha256_hex(&bytes);
                produced = Some(got.clone());
                if &got != latents_sha256 {
                    return Err(format!("latents sha256 {got}, expected {latents_sha256}"));
                }
                if latents_only || reference.is_none() {
                    return Ok("latents match".into());
                }
                let pixels = read_png_rgb(&img)?;
                Ok(format!(
                    "latents match{}",
                    compare_reconstruction(reference, &pixels)?
                ))
            }
        }
    })();
    let check = if latents_only && matches!(v.expect, Expect::Decode { .. }) {
        "latents exact".to_string()
    } else {
        check_name(v)
    };
    outcome(v, &check, result, produced, fail_check)
}
