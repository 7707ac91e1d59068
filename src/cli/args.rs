use super::error::CliError;
use clap::{Args, Parser, Subcommand};
use icm_eval::task::domain::InputDomain;
use icm_eval::task::TaskKind;
use std::path::PathBuf;

pub use icm_eval::task::job::TaskCodec;

/// icm: reference encoder/decoder for image coding for machines (spec v1.1).
///
/// Streams carry a mean-scale hyperprior latent representation coded with rANS. Decoding
/// is bit-exact up to the latents on every platform; the pixel reconstruction is within the
/// tolerance of spec section 11.
#[derive(Debug, Parser)]
#[command(name = "icm", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `--threads`, on the commands that run the codec.
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct ThreadsArg {
    /// Worker threads, 1 to 256 (default: all cores). Results do not depend on it.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256), help_heading = "Common options")]
    pub threads: Option<u16>,
}

/// `--model-dir`, on the commands that look models up by name.
#[derive(Debug, Args, Clone, Default)]
pub struct ModelDirArg {
    /// Directory of model files (default: $ICM_MODEL_DIR or the repository's models/).
    #[arg(long, help_heading = "Common options")]
    pub model_dir: Option<PathBuf>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Encode a picture (PNG, PPM, JPEG, WebP, TIFF, BMP, GIF, TGA, QOI) into an .icm stream.
    Encode(EncodeArgs),
    /// Decode an .icm stream to PNG, PPM or JPEG, optionally writing the latents.
    Decode(DecodeArgs),
    /// Print every header field of a stream.
    Info(InfoArgs),
    /// Model-file tools.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Rate-distortion evaluation over a directory of PNGs (CompressAI-style JSON, CSV).
    Eval(EvalArgs),
    /// Bjøntegaard-delta rate and metric of a test curve against an anchor (CSV or eval JSON).
    BdRate(BdRateArgs),
    /// Run the conformance suite on the built-in decoder or on any decoder command.
    Conformance(ConformanceArgs),
    /// Conventional-codec anchors (VVC, HEVC, AV1, JPEG, JPEG XL, WebP) through ffmpeg,
    /// with results in the layout of `icm eval`.
    Anchor(AnchorArgs),
    /// Rate-distortion curves of one or more results files (`icm eval`, `icm anchor`,
    /// CompressAI JSON) as PNG or SVG.
    Plot(PlotArgs),
    /// Rate-task evaluation: code every image, run a task network on the decoded pictures
    /// and score it (COCO mAP, top-1/top-5, mIoU) per rate point (eval-style JSON, CSV).
    #[command(long_about = TASK_EVAL_HELP)]
    TaskEval(TaskEvalArgs),
    /// Run a task network on one image (PNG, PPM, JPEG, or an .icm stream, decoded first)
    /// and print the result.
    TaskRun(TaskRunArgs),
    /// Encode and decode speed on a directory of PNGs, stage by stage (in memory; median
    /// of repeated runs).
    Bench(BenchArgs),
    /// JPEG to DCT coefficients as frequency channels (.npy), without decoding pixels
    /// (spec Annex B).
    ///
    /// Reads the quantised DCT coefficients of a baseline, extended or progressive Huffman
    /// JPEG (the values libjpeg's jpeg_read_coefficients gives) and writes them as frequency
    /// channels on the luma 8x8-block grid, a (C, ceil(H/8), ceil(W/8)) array: channel
    /// c*64 + u*8 + v is coefficient (u, v) (u vertical, v horizontal frequency) of component
    /// c (Y, Cb, Cr). Subsampled chroma blocks (4:2:0, 4:2:2) are repeated over the luma
    /// blocks they cover. Arithmetic-coded, lossless, hierarchical and 12-bit JPEGs are
    /// refused.
    Dct(DctArgs),
}

const TASK_EVAL_HELP: &str = "\
Rate-task evaluation: for every rate point, encode each image with the codec, decode it, run
the task network on the decoded picture and score the results over the dataset.

Tasks, their built-in networks (in ../shared/models beside the repository, or
$ICM_TASK_MODELS, or --task-model) and datasets:
  detection       YOLOX-Nano (yolox_nano/yolox_nano.onnx); --dataset is a COCO folder with
                  annotations/instances_*.json and the images in val2017/ (or the folder
                  itself); scores map (mAP@[.5:.95]) and map50 as pycocotools' COCOeval.
  classification  MobileNetV2 (classification/mobilenet_v2_1.0_224_quant.onnx); --dataset
                  holds the images and labels.csv (file,class_index,...); scores top1, top5.
  segmentation    DeepLabV3 (segmentation/deeplabv3_mnv2_pascal_257.onnx); --dataset is a COCO
                  folder as for detection, scored by miou (21 classes) and pixel_accuracy
                  against the COCO instance masks of the 20 VOC-equivalent categories (the
                  ground truth of the model's MODEL.md), or any folder of images without
                  annotations. With --codec icm it also scores agreement: miou_agreement, the
                  mIoU against the prediction on the uncompressed image.

Codecs: `icm` (zoo qualities, --qualities) or `none` (the uncompressed ceiling, reported at
24 bpp), or a conventional codec through the `icm anchor` path (--qps). Results: the layout
of `icm eval -o` (name, description, results {bpp: [..], map: [..], ..}), so
`icm bd-rate --metric map` reads them; the CSV has one row per rate point with the same
columns. Times, per picture: coding_time (the encoder; for conventional codecs ffmpeg's
encoder and decoder), decode_s (coded picture to what the network reads), infer_s (the
network with its pre-processing), task_time = decode_s + infer_s.

DCT-domain classification (spec Annex B): `--codec jpeg-ijg` takes each picture's 224x224
network input crop (shorter side 256, centre crop), JPEG-codes it in process at the IJG
qualities of --qps (4:2:0, libjpeg's scaling of the Annex K tables; default
10,20,...,90,95), and gives the classifier, by --input-domain, the decoded picture (rgb),
all 192 DCT channels (dct192) or the 24 of Annex B.3 (dct24), the last two without pixel
decoding (composed networks from scripts/setup_onnxruntime.sh). bpp is of the 224x224
JPEG; input_bytes is the float32 tensor given to the network; decode_s is JPEG to pixels
or to coefficients, infer_s the network with its input arrangement.

Latent-domain classification and detection (issue 8): `--codec icm --input-domain latents`
codes each whole picture with the zoo models (the streams of `--codec icm`) and runs two
decoders on every stream: decode-then-infer (full decode, g_s included, then the pixel
network) and the latent network on y^ (entropy decoding and h_s only, no g_s; composed
networks from scripts/setup_onnxruntime.sh). top1/top5 (map/map50), decode_s, infer_s and
macs are of the latent path, rgb_top1, rgb_top5 (rgb_map, rgb_map50), rgb_decode_s,
rgb_infer_s and rgb_macs of decode-then-infer; rgb_macs counts g_s (its convolutions and
GDNs on the picture's tiles) and the pixel network (from its graph, recorded at
composition).

Needs ONNX Runtime: scripts/setup_onnxruntime.sh installs it into the project venv, where
icm finds it; ORT_DYLIB_PATH overrides.";

/// `icm task-eval`.
#[derive(Debug, Args)]
pub struct TaskEvalArgs {
    #[command(flatten)]
    pub threads: ThreadsArg,
    #[command(flatten)]
    pub model_dir: ModelDirArg,
    /// Task: detection, classification or segmentation.
    #[arg(long)]
    pub task: TaskKind,
    /// Dataset folder (see above for the layout each task expects).
    #[arg(long)]
    pub dataset: PathBuf,
    /// Codec under test: icm (its zoo models), none (uncompressed ceiling), a
    /// conventional codec through the `icm anchor` path: vvc, hevc, av1, jpeg, jxl, webp,
    /// or jpeg-ijg (classification: the network's 224x224 input crop JPEG-coded in process
    /// at IJG qualities --qps, read as --input-domain).
    #[arg(long, default_value = "icm")]
    pub codec: TaskCodec,
    /// What reaches the classifier with --codec jpeg-ijg: rgb (the decoded picture), dct192
    /// (all DCT channels, no pixel decoding) or dct24 (the 24 channels of spec Annex B.3);
    /// with --codec icm: rgb, or latents (y^ without g_s, against decode-then-infer).
    #[arg(long, default_value = "rgb")]
    pub input_domain: InputDomain,
    /// Rate points for --codec icm: zoo qualities as a range `1..6` or a list `1,3,5`, and
    /// `Q@S` for quality Q at a global quantisation step S (1/256 to 16, spec 12.7), which
    /// extends a curve below quality 1 or between qualities: `1@3,1@2,1..6` (default 1..6).
    #[arg(long)]
    pub qualities: Option<String>,
    /// With --codec icm: code each picture with region-of-interest steps from this task's
    /// network on the original picture (detection, classification, segmentation; the
    /// mappings of `icm encode --roi`), computed once per picture for every rate point.
    #[arg(long, value_name = "TASK")]
    pub roi: Option<icm_eval::task::roi::RoiTask>,
    /// With --roi: the step factor of the least important cells (as `icm encode`; default 16
    /// for classification, 3 for detection and segmentation).
    #[arg(long, value_name = "G", value_parser = parse_positive)]
    pub roi_background: Option<f64>,
    /// Models for --codec icm instead of --qualities: names in the model directory (e.g.
    /// icm-machine-q2) or model files, one rate point each.
    #[arg(long = "model", num_args = 1.., conflicts_with = "qualities")]
    pub models: Vec<String>,
    /// Rate parameters of a conventional codec, as `icm anchor --qps` (default: its ladder,
    /// QP 22..47 for vvc and hevc); for jpeg-ijg IJG qualities 1..100 (default
    /// 10,20,30,40,50,60,70,80,90,95).
    #[arg(long, allow_hyphen_values = true)]
    pub qps: Option<String>,
    /// ffmpeg for conventional codecs (as `icm anchor --ffmpeg`).
    #[arg(long)]
    pub ffmpeg: Option<PathBuf>,
    /// Evaluate only the first N images (in the dataset's order: ascending COCO image id,
    /// labels.csv order, or sorted file names).
    #[arg(long)]
    pub limit: Option<usize>,
    /// The task network's ONNX file (default: the built-in one for --task).
    #[arg(long)]
    pub task_model: Option<PathBuf>,
    /// COCO annotations file (detection, segmentation; default: the one
    /// instances_*.json in DATASET/annotations).
    #[arg(long)]
    pub annotations: Option<PathBuf>,
    /// JSON results (layout of `icm eval -o`).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// CSV results: one row per rate point.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Detection: also write every rate point's detections in COCO results format
    /// (`[{image_id, category_id, bbox, score}]`) to PREFIX-<label>.json.
    #[arg(long)]
    pub save_detections: Option<PathBuf>,
}

/// `icm task-run`.
#[derive(Debug, Args)]
pub struct TaskRunArgs {
    #[command(flatten)]
    pub threads: ThreadsArg,
    #[command(flatten)]
    pub model_dir: ModelDirArg,
    /// Task: detection, classification or segmentation.
    #[arg(long)]
    pub task: TaskKind,
    /// Input: PNG, PPM, JPEG, or an .icm stream (decoded with its model first); a JPEG
    /// for the DCT input domains.
    pub input: PathBuf,
    /// What reaches the classifier: rgb (the decoded picture), or the JPEG's DCT
    /// coefficients without pixel decoding: dct192 (all channels) or dct24 (the 24 of spec
    /// Annex B.3). The DCT networks were trained on 224x224 JPEGs of the network's input
    /// crop (shorter side 256, centre 224); other sizes run on their whole block grid.
    /// latents: an .icm stream decoded to y^ only (no g_s), read by the latent classifier
    /// or detector.
    #[arg(long, default_value = "rgb")]
    pub input_domain: InputDomain,
    /// The task network's ONNX file (default: the built-in one for --task).
    #[arg(long)]
    pub task_model: Option<PathBuf>,
    /// Detection: print boxes with at least this score.
    #[arg(long, default_value_t = 0.3)]
    pub min_score: f32,
    /// Segmentation: write the class map as an 8-bit greyscale PNG (value = class index).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub limits: LimitsArgs,
}

/// `icm dct` (spec Annex B).
#[derive(Debug, Args)]
pub struct DctArgs {
    /// Input JPEG (baseline or extended sequential or progressive, Huffman-coded, 8-bit).
    pub input: PathBuf,
    /// Output .npy: int32 dequantised coefficients (quantised value times its quantisation
    /// step; they fit in int32), or int16 with --raw.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Channels: `all` (64 per component: 192 for YCbCr, 64 for grayscale), `24` (the set
    /// of Annex B.3, ascending, selected by learned channel gates; its Y channels for
    /// grayscale), or a comma-separated list of indices and ranges such as `0-15,64,128`,
    /// written in the order given.
    #[arg(long, default_value = "all")]
    pub channels: String,
    /// Memory order: chw (channels, rows, columns) or hwc (rows, columns, channels).
    #[arg(long, default_value = "chw", value_parser = ["chw", "hwc"])]
    pub layout: String,
    /// Write the quantised coefficients as stored in the file (int16), not multiplied by
    /// the quantisation table.
    #[arg(long)]
    pub raw: bool,
    /// Read corrupt or truncated files as libjpeg does (missing coefficients zero,
    /// resynchronisation at restart markers, a missing EOI accepted), printing a warning
    /// for each repair, instead of refusing them.
    #[arg(long)]
    pub lenient: bool,
    /// Refuse files whose coefficients or output tensor would need more memory than this
    /// (bytes, or with a suffix K, M, G: 512M), before allocating them. Default: 2^24
    /// blocks of coefficients (2 GiB) and a 1 GiB tensor.
    #[arg(long, value_parser = parse_size, help_heading = "Limits")]
    pub max_memory: Option<u64>,
}

/// `icm encode`.
#[derive(Debug, Args)]
pub struct EncodeArgs {
    #[command(flatten)]
    pub threads: ThreadsArg,
    #[command(flatten)]
    pub model_dir: ModelDirArg,
    /// Input picture: PNG, PPM/PGM/PAM, JPEG, WebP, TIFF, BMP, GIF, TGA or QOI. Coded as
    /// 8-bit RGB: greyscale is replicated, alpha dropped, 16-bit samples become
    /// round(v / 257).
    pub input: PathBuf,
    /// Output stream.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Model name (looked up in the model directory) or path to a model file, instead of
    /// --quality.
    #[arg(long, conflicts_with = "quality")]
    pub model: Option<String>,
    /// Quality 1.0 (lowest rate, ~0.17 bpp on Kodak) ..= 6.0 (highest, ~1.13 bpp); default
    /// 3 (~0.44 bpp). A whole number selects the zoo model of that quality; a fraction such
    /// as 3.5 codes at the geometric mean of the sizes of models 3 and 4 on this picture,
    /// with model 4 and a global quantisation step (spec 12.7).
    #[arg(short, long, value_parser = parse_quality)]
    pub quality: Option<f64>,
    /// Tile size WxH in pixels, or N for NxN: multiples of 64 from 64 to 2048 (spec 5.2).
    /// A tile larger than the picture is the whole picture. Default 1024x1024: pictures up
    /// to 1024 pixels a side are one tile.
    #[arg(long)]
    pub tile: Option<String>,
    /// Write a version 1.0 stream, without the CRC-32C after each tile (spec 4.5) that
    /// lets a decoder detect a corrupted tile; saves 12 bytes per tile.
    #[arg(long)]
    pub no_checksums: bool,
    #[command(flatten)]
    pub search: SearchArgs,
    #[command(flatten)]
    pub rate: RateArgs,
    #[command(flatten)]
    pub roi: RoiArgs,
}

/// Rate control and quantisation steps (`icm encode`; spec 5.4, 12.7). Streams with a step
/// other than 1 are version 1.3 streams: decoders before 1.3 refuse them.
#[derive(Debug, Args)]
pub struct RateArgs {
    /// Target size in bits per pixel: the stream is at most floor(BPP * W * H / 8) bytes,
    /// coded with the lowest-quality zoo model (or --model) whose stream at step 1 is at
    /// least that large, and the smallest global step that fits (bisection: about 14
    /// quantisations and entropy codings after one analysis per model tried, about 1 s for
    /// a Kodak picture). With --effort, the search runs once at the step found.
    #[arg(long, value_parser = parse_positive, conflicts_with_all = ["bytes", "quality", "step"],
          help_heading = "Rate control")]
    pub bpp: Option<f64>,
    /// Target size in bytes (as --bpp).
    #[arg(long, conflicts_with_all = ["quality", "step"], help_heading = "Rate control")]
    pub bytes: Option<usize>,
    /// Global quantisation step (1/256 to 16; 1 = the model's own rate; 2 roughly halves
    /// the rate of the latents). The model is --model or --quality.
    #[arg(long, value_parser = parse_positive, help_heading = "Rate control")]
    pub step: Option<f64>,
}

/// Region-of-interest coding (`icm encode`; spec 12.7).
#[derive(Debug, Args)]
pub struct RoiArgs {
    /// Spend the bits where a task network looks: run it on the input (forward only) and
    /// quantise each 16x16 cell with step G^(1-w) for its importance w in [0, 1] (G:
    /// --roi-background). detection: YOLOX-Nano; w = 1 on the cells of every box with
    /// score >= 0.3, dilated by one cell, else 0. classification: MobileNetV2 sees only its
    /// centre crop (shorter side to 256, 224 crop): w = 1 on the cells it reads, 0
    /// elsewhere; no network runs. segmentation:
    /// DeepLabV3; w = 1 on cells with at least 10 % predicted foreground, dilated by one
    /// cell. A picture where the task finds nothing is coded at step G everywhere.
    #[arg(
        long,
        value_name = "TASK",
        conflicts_with = "roi_map",
        help_heading = "Regions of interest"
    )]
    pub roi: Option<String>,
    /// A user's importance map: a grey-scale picture (any size, stretched over the input;
    /// white = important, w = grey / 255 averaged over each 16x16 cell).
    #[arg(long, value_name = "PNG", help_heading = "Regions of interest")]
    pub roi_map: Option<PathBuf>,
    /// Step factor G of the least important cells (1 to 16; cells of importance 1 keep
    /// step 1). Default 16 for --roi classification (the classifier never sees those
    /// cells), 3 for detection, segmentation and --roi-map. With --bpp or --bytes the whole
    /// map is scaled to meet the target.
    #[arg(long, value_name = "G", value_parser = parse_positive, help_heading = "Regions of interest")]
    pub roi_background: Option<f64>,
    /// Task network for --roi (default: the built-in one of the task in ../shared/models
    /// or $ICM_TASK_MODELS).
    #[arg(long, value_name = "ONNX", help_heading = "Regions of interest")]
    pub roi_model: Option<PathBuf>,
}

/// A quality of the continuous scale, 1.0 to 6.0.
fn parse_quality(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (1.0..=6.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?}: expected a quality from 1 to 6, e.g. 3 or 3.5"
        )),
    }
}

/// A positive, finite number.
fn parse_positive(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?}: expected a positive number")),
    }
}

/// The encoder's rate-distortion search (`icm encode`, `icm eval`).
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Encoder effort 0-3. 0 codes the latents the analysis transform predicts; 1-3 search
    /// per tile for latents with a lower rate + lambda * distortion (stochastic Gumbel
    /// annealing through g_s, 25, 60 and 150 gradient steps; spec 12.6). Any decoder decodes
    /// the streams; only encoding is slower: per megapixel on an idle 2-core machine (zoo
    /// q3), 0.5 s at effort 0, then 18, 43 and 104 s. On Kodak with the zoo, effort 1 saves
    /// 5.4 % BD-rate (PSNR) and effort 3 9.8 % (four pictures); MS-SSIM is not what it
    /// optimises (docs/results/kodak-effort.md).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=3),
          help_heading = "Encoder search")]
    pub effort: u8,
    /// The rate-distortion weight of the search (loss bpp + lambda * 255^2 * MSE), when the
    /// model's `lambda` metadata entry is missing (imported models) or to override it.
    #[arg(long, value_parser = parse_lambda, help_heading = "Encoder search")]
    pub lambda: Option<f32>,
}

/// A positive, finite lambda.
fn parse_lambda(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?}: expected a positive number, e.g. 0.013")),
    }
}

/// `icm decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    #[command(flatten)]
    pub threads: ThreadsArg,
    #[command(flatten)]
    pub model_dir: ModelDirArg,
    /// Input stream.
    pub input: PathBuf,
    /// Output picture, format by extension: .png, .ppm, or .jpg/.jpeg (JPEG quality 95,
    /// lossy: for viewing, not for measuring).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Also write y^ as fixed-point int32 (units of 1/256), shape (M, H/16, W/16) with
    /// tiles placed at their positions, as .npy.
    #[arg(long)]
    pub latents: Option<PathBuf>,
    /// Model file to use instead of looking the stream's model up by name.
    #[arg(long)]
    pub model: Option<String>,
    /// Print the SHA-256 of the latents in the serialisation of spec Annex A.
    #[arg(long)]
    pub hash: bool,
    /// Also write the decoded latents in the serialisation of spec Annex A (z^ then y^ of
    /// every tile, int32 little-endian): the file whose SHA-256 conformance records give.
    #[arg(long)]
    pub latents_raw: Option<PathBuf>,
    #[command(flatten)]
    pub limits: LimitsArgs,
}

/// `--max-pixels` and `--max-memory`, on the commands that decode untrusted input
/// (`decode`, `task-run`).
#[derive(Debug, Clone, Copy, Args)]
pub struct LimitsArgs {
    /// Refuse streams of more pixels (width x height) than this, before any work. Default:
    /// the spec's level limits only (2^28 pixels at level 2). A few bytes can declare the
    /// largest picture of a level (empty payloads are conforming): a server decoding
    /// untrusted streams should set this and --max-memory.
    #[arg(long, help_heading = "Limits")]
    pub max_pixels: Option<u64>,
    /// Refuse input whose decode would need more memory than this (bytes, or with a
    /// suffix K, M, G: 512M, 4G), before any work. Streams: tiles are synthesised as many
    /// at a time as fit; counts the latents, the picture (one row of tiles for PNG and PPM
    /// outputs, written band by band) and about 160 bytes per pixel of each tile being
    /// synthesised, not the model. JPEG files (DCT input domains): bounds
    /// the coefficients kept and the tensor given to the network. Default: no limit for
    /// streams; 1 GiB of tensor and 2^24 blocks for JPEG files.
    #[arg(long, value_parser = parse_size, help_heading = "Limits")]
    pub max_memory: Option<u64>,
}

impl LimitsArgs {
    /// The limits of the stream decoder.
    pub fn decode_limits(&self) -> icm::codec::DecodeLimits {
        icm::codec::DecodeLimits {
            max_pixels: self.max_pixels.unwrap_or(u64::MAX),
            max_memory: self.max_memory.unwrap_or(u64::MAX),
        }
    }

    /// The options of the JPEG coefficient decoder under --max-memory.
    pub fn jpeg_options(&self) -> icm_eval::jpeg::DecodeOptions {
        jpeg_options(self.max_memory)
    }
}

/// The options of the JPEG coefficient decoder: the defaults, tightened by a memory limit
/// (coefficient storage is 128 bytes per 8x8 block).
pub fn jpeg_options(max_memory: Option<u64>) -> icm_eval::jpeg::DecodeOptions {
    let mut o = icm_eval::jpeg::DecodeOptions::default();
    if let Some(m) = max_memory {
        o.max_tensor_bytes = o.max_tensor_bytes.min(m);
        o.max_blocks = o.max_blocks.min(m / 128);
    }
    o
}

/// A size in bytes: a number, optionally followed by K, M or G (powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, shift) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 10),
        Some('M') => (&t[..t.len() - 1], 20),
        Some('G') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|v| v.checked_mul(1u64 << shift))
        .ok_or_else(|| format!("{s:?}: expected bytes such as 1048576, 512M or 4G"))
}

/// `icm anchor`.
///
/// Encodes every PNG of a directory with a real conventional encoder at each rate point,
/// decodes the bitstream, and reports bpp (size of the raw bitstream x 8 / pixels),
/// PSNR-RGB and MS-SSIM like `icm eval`. VVC is libvvenc (all-intra, preset medium,
/// perceptual QP adaptation off, IntraQPOffset=0, 10-bit 4:2:0) decoded by ffmpeg's native
/// VVC decoder. Video codecs get 10-bit 4:2:0 from icm's own BT.709 full-range conversion;
/// docs/anchors.md states every setting. Results are cached by image hash and settings, so
/// a rerun is instant.
#[derive(Debug, Args)]
pub struct AnchorArgs {
    /// Codec: vvc, hevc, av1, jpeg, jxl or webp.
    #[arg(long, default_value = "vvc")]
    pub codec: String,
    /// Directory of PNG images, coded in sorted file-name order.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Rate parameters: QP for vvc and hevc (default 22,27,32,37,42,47), CRF for av1
    /// (16..56), qscale for jpeg (2..31), distance for jxl (0.5..12), quality for webp
    /// (95..10). A list replaces the default ladder; a list starting with '+' (e.g. +17,52)
    /// is added to it.
    #[arg(long, alias = "levels", allow_hyphen_values = true)]
    pub qps: Option<String>,
    /// Only the first N images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// ffmpeg executable (default: $ICM_FFMPEG, $IMAGEIO_FFMPEG_EXE, or the imageio-ffmpeg
    /// wheel that scripts/setup_ffmpeg.sh installs).
    #[arg(long)]
    pub ffmpeg: Option<PathBuf>,
    /// Encoder preset of vvc and hevc.
    #[arg(long, default_value = "medium")]
    pub preset: String,
    /// For vvc, hevc, av1: your own encoder instead of ffmpeg's, run by `sh -c` with {in}
    /// (yuv420p10le file), {out} (raw bitstream), {width}, {height} and {qp} replaced, e.g.
    /// 'vvencapp -i {in} -s {width}x{height} -c yuv420_10 --preset medium --qp {qp} --qpa 0
    /// -o {out}'. The bitstream is decoded by ffmpeg.
    #[arg(long)]
    pub encoder_cmd: Option<String>,
    /// Cache directory (default: $ICM_CACHE_DIR/anchors or ~/.cache/icm/anchors).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Encode everything again, without reading or writing the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Also write every bitstream and decoded PNG into this directory.
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// Results JSON (CompressAI eval_model layout plus per-image rows and settings).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Results CSV (one row per image and rate point, plus means).
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

/// `icm plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Results files: JSON from `icm eval`, `icm anchor`, `icm task-eval` or CompressAI's
    /// eval_model, or CSV with a `bpp` column. One curve each.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output image: .png or .svg.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Quality metric on the y axis: a key of the results (psnr-rgb, ms-ssim, map, top1, ...).
    #[arg(long, default_value = "psnr-rgb")]
    pub metric: String,
    /// Plot title.
    #[arg(long)]
    pub title: Option<String>,
    /// Curve labels, one per input, comma-separated (default: the files' `name`, else the
    /// file name).
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Horizontal line for a ceiling (e.g. the uncompressed task score), with an optional
    /// label: VALUE or VALUE:LABEL.
    #[arg(long)]
    pub ceiling: Option<String>,
    /// Image width and height in pixels.
    #[arg(long, default_value = "900x600")]
    pub size: String,
}

/// `icm conformance`.
#[derive(Debug, Args)]
pub struct ConformanceArgs {
    #[command(flatten)]
    pub threads: ThreadsArg,
    /// Suite root holding conformance/vectors.json (default: the repository).
    pub dir: Option<PathBuf>,
    /// Third-party decoder command, run by `sh -c` with {in}, {model}, {out_latents}
    /// (write the Annex A latents there) and {out_image} (write a PNG there) replaced;
    /// it must exit non-zero on must-fail streams. It reports the error class there as
    /// the first line of stderr that starts with `error: `: the rest of that line,
    /// trimmed, is the class, compared with the expected one (spec 13 names as in
    /// conformance/vectors.json: truncated, invalid-field, ...); with no such line only
    /// the exit status is checked ("exit only"). Default: the built-in decoder.
    #[arg(long)]
    pub decoder: Option<String>,
    /// Only vectors whose name contains this text.
    #[arg(long)]
    pub filter: Option<String>,
    /// Check the latents only, not the reconstruction (for decoders of the normative part).
    #[arg(long)]
    pub latents_only: bool,
    /// One JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `icm info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Input stream.
    pub input: PathBuf,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `icm model ...`.
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Build a model file from a float export of the training recipe (spec 12.2-12.3).
    Build(ModelBuildArgs),
    /// Print a model file's metadata, id and shapes.
    Info(ModelInfoArgs),
    /// Import a CompressAI model (bmshj2018-hyperprior, mbt2018-mean) as an icm model file
    /// (spec 12.5): its float transforms as they are, an integer h_s calibrated on
    /// pictures, CompressAI's own entropy tables. Streams made with it decode bit-exactly
    /// on every platform.
    Import(ModelImportArgs),
}

/// The model families `icm model import --arch` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportArch {
    /// `compressai.models.ScaleHyperprior` (zoo qualities 1-5: N=128, M=192; 6-8: N=192,
    /// M=320).
    #[value(name = "bmshj2018-hyperprior")]
    Bmshj2018Hyperprior,
    /// `compressai.models.MeanScaleHyperprior` (zoo qualities 1-4: N=128, M=192; 5-8:
    /// N=192, M=320).
    #[value(name = "mbt2018-mean")]
    Mbt2018Mean,
}

/// Where `icm model import` reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportSource {
    /// A CompressAI checkpoint.
    #[value(name = "compressai")]
    Compressai,
}

/// `icm model import`.
#[derive(Debug, Args)]
pub struct ModelImportArgs {
    #[command(flatten)]
    pub threads: ThreadsArg,
    /// The checkpoint: a training checkpoint (`.pth.tar` with a `state_dict` entry, as
    /// CompressAI's examples/train.py writes it) or a plain state dict (the files of
    /// `compressai.zoo`), in torch's zip or legacy format. It is read without running any
    /// code from it (unlike `torch.load`).
    pub checkpoint: PathBuf,
    /// The project that trained the model.
    #[arg(long, value_enum, default_value = "compressai")]
    pub from: ImportSource,
    /// The model family of the checkpoint.
    #[arg(long, value_enum)]
    pub arch: ImportArch,
    #[command(flatten)]
    pub file: ModelFileArgs,
    /// Folder of pictures (searched with its subfolders) to calibrate the integer h_s on
    /// (the largest activation of each hidden layer sets its fixed-point scale, spec 12.2):
    /// use photos like the ones you will code. Default: 4 synthetic 512x512 pictures,
    /// which is enough to run but calibrates less well than real photos.
    #[arg(long, value_name = "DIR")]
    pub calibrate: Option<PathBuf>,
    /// Use at most this many pictures of --calibrate (the first in path order).
    #[arg(long, default_value_t = 24, value_name = "N")]
    pub calibrate_count: usize,
    /// Store the float transforms as F16 (half the file size; the reconstruction moves by
    /// a few hundredths of a dB) instead of F32, CompressAI's own precision.
    #[arg(long)]
    pub f16: bool,
}

/// The model file that `icm model build` and `icm model import` write.
#[derive(Debug, Args)]
pub struct ModelFileArgs {
    /// Output model file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Model name carried by streams (1..=64 bytes); streams name the model they need.
    #[arg(long)]
    pub name: String,
    /// Quality index in the model's metadata (informative; e.g. the zoo quality).
    #[arg(long)]
    pub quality: Option<u8>,
    /// Extra metadata entries KEY=VALUE (informative).
    #[arg(long = "meta")]
    pub meta: Vec<String>,
}

impl ModelFileArgs {
    /// The `--meta` entries as a map.
    pub fn extra(&self) -> Result<std::collections::BTreeMap<String, String>, CliError> {
        self.meta
            .iter()
            .map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .ok_or_else(|| CliError::Usage(format!("--meta {kv:?}: expected KEY=VALUE")))
            })
            .collect()
    }
}

/// `icm model build`.
#[derive(Debug, Args)]
pub struct ModelBuildArgs {
    /// Float export (safetensors, format icm-float-1) written by models/training/icm_training/export.py,
    /// or `seed:N` for a seeded random model (tests, vectors).
    pub input: String,
    #[command(flatten)]
    pub file: ModelFileArgs,
}

/// `icm model info`.
#[derive(Debug, Args)]
pub struct ModelInfoArgs {
    #[command(flatten)]
    pub model_dir: ModelDirArg,
    /// Model file or name.
    pub model: String,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `icm eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub threads: ThreadsArg,
    #[command(flatten)]
    pub model_dir: ModelDirArg,
    /// Directory of PNG images, evaluated in sorted file-name order.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Zoo qualities: an inclusive range `1..6` or a list `1,3,5` (models icm-psnr-qN), and
    /// `Q@S` for quality Q at a global quantisation step S (spec 12.7), e.g. `3@0.5,3@2`.
    /// Default 1..6 when no --model is given.
    #[arg(long)]
    pub qualities: Option<String>,
    /// Model names (looked up in the model directory) or model file paths.
    #[arg(long = "model", num_args = 1..)]
    pub models: Vec<String>,
    /// JSON results (layout of CompressAI's eval_model, plus per-image figures).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// CSV results: one row per model and image, plus one mean row per model.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Evaluate only the first N images.
    #[arg(long)]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub search: SearchArgs,
}

/// `icm bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub threads: ThreadsArg,
    #[command(flatten)]
    pub model_dir: ModelDirArg,
    /// Directory of PNG images, in sorted file-name order.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Zoo quality 1..=6 (default 3, the default model).
    #[arg(long, short)]
    pub quality: Option<u8>,
    /// Model name or model file instead of --quality.
    #[arg(long, conflicts_with = "quality")]
    pub model: Option<String>,
    /// Timed runs per image after one untimed warm-up; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Only the first N images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// JSON with the per-image and median figures.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// `icm bd-rate`.
#[derive(Debug, Args)]
pub struct BdRateArgs {
    /// Anchor results: CSV with a header row (columns `bpp` and the metric; rows in any
    /// order) or the JSON written by `icm eval -o` (told apart by the .json extension).
    #[arg(long)]
    pub anchor: PathBuf,
    /// Test results, same formats as --anchor.
    #[arg(long)]
    pub test: PathBuf,
    /// Quality column (in eval JSON, `psnr` reads `psnr-rgb`; `_` and `-` are interchangeable).
    #[arg(long, default_value = "psnr")]
    pub metric: String,
    /// Interpolation: pchip (piecewise cubic, as the JVET/MPEG CTC sheets), akima, or cubic
    /// (VCEG-M33 polynomial fit; needs 4 points per curve).
    #[arg(long, default_value = "pchip", value_parser = ["pchip", "akima", "cubic"])]
    pub method: String,
    /// Use each curve's upper envelope: leave out every point that a cheaper point of the
    /// same curve matches or beats (task-accuracy curves of small sets are often not
    /// monotone; pchip and akima need monotone curves). The points left out are listed.
    #[arg(long)]
    pub envelope: bool,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}
