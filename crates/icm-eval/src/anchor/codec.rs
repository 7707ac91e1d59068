//! The conventional codecs `icm anchor` runs, with the exact encoder settings of each.

use std::fmt;

/// A conventional codec run through ffmpeg (or a user's encoder command, for VVC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnchorCodec {
    /// H.266/VVC: libvvenc, decoded by ffmpeg's native `vvc` decoder.
    Vvc,
    /// H.265/HEVC: libx265, decoded by ffmpeg's `hevc` decoder.
    Hevc,
    /// AV1: libaom, decoded by libdav1d.
    Av1,
    /// JPEG: ffmpeg's `mjpeg` encoder, 4:2:0, optimal Huffman tables.
    Jpeg,
    /// JPEG XL: libjxl.
    Jxl,
    /// WebP (lossy): libwebp.
    Webp,
}

/// How the rate of a codec is set, and the colour path it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Video codec fed 10-bit 4:2:0 made by [`super::colour`]; rate set by QP or CRF.
    Video,
    /// Image codec fed 8-bit RGB; it converts colour itself.
    Image,
}

impl AnchorCodec {
    /// Every codec, in the order reports list them.
    pub const ALL: [AnchorCodec; 6] = [
        AnchorCodec::Vvc,
        AnchorCodec::Hevc,
        AnchorCodec::Av1,
        AnchorCodec::Jpeg,
        AnchorCodec::Jxl,
        AnchorCodec::Webp,
    ];

    /// Short name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            AnchorCodec::Vvc => "vvc",
            AnchorCodec::Hevc => "hevc",
            AnchorCodec::Av1 => "av1",
            AnchorCodec::Jpeg => "jpeg",
            AnchorCodec::Jxl => "jxl",
            AnchorCodec::Webp => "webp",
        }
    }

    /// Parses a short name (case-insensitive; `h266`, `h265`, `jpegxl` also accepted).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "vvc" | "h266" | "h.266" => Some(AnchorCodec::Vvc),
            "hevc" | "h265" | "h.265" => Some(AnchorCodec::Hevc),
            "av1" => Some(AnchorCodec::Av1),
            "jpeg" | "jpg" => Some(AnchorCodec::Jpeg),
            "jxl" | "jpegxl" | "jpeg-xl" => Some(AnchorCodec::Jxl),
            "webp" => Some(AnchorCodec::Webp),
            _ => None,
        }
    }

    /// Colour path of the codec.
    pub fn family(self) -> Family {
        match self {
            AnchorCodec::Vvc | AnchorCodec::Hevc | AnchorCodec::Av1 => Family::Video,
            AnchorCodec::Jpeg | AnchorCodec::Jxl | AnchorCodec::Webp => Family::Image,
        }
    }

    /// Name of the rate parameter and which way it goes.
    pub fn level_name(self) -> &'static str {
        match self {
            AnchorCodec::Vvc | AnchorCodec::Hevc => "qp",
            AnchorCodec::Av1 => "crf",
            AnchorCodec::Jpeg => "qscale",
            AnchorCodec::Jxl => "distance",
            AnchorCodec::Webp => "quality",
        }
    }

    /// Valid range of the rate parameter.
    pub fn level_range(self) -> (f64, f64) {
        match self {
            AnchorCodec::Vvc | AnchorCodec::Hevc | AnchorCodec::Av1 => (0.0, 63.0),
            AnchorCodec::Jpeg => (2.0, 31.0),
            AnchorCodec::Jxl => (0.1, 15.0),
            AnchorCodec::Webp => (0.0, 100.0),
        }
    }

    /// Whether the rate parameter must be an integer.
    pub fn integer_levels(self) -> bool {
        !matches!(self, AnchorCodec::Jxl | AnchorCodec::Webp)
    }

    /// The default ladder, highest quality first: the common-test-condition QPs for VVC
    /// and HEVC, and ladders spanning about the same rates (0.05 to 3 bpp on Kodak) for the
    /// others.
    pub fn default_levels(self) -> Vec<f64> {
        match self {
            AnchorCodec::Vvc | AnchorCodec::Hevc => vec![22.0, 27.0, 32.0, 37.0, 42.0, 47.0],
            AnchorCodec::Av1 => vec![16.0, 24.0, 32.0, 40.0, 48.0, 56.0],
            AnchorCodec::Jpeg => vec![2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 31.0],
            AnchorCodec::Jxl => vec![0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0],
            AnchorCodec::Webp => vec![95.0, 85.0, 70.0, 50.0, 30.0, 10.0],
        }
    }

    /// The encoder arguments of ffmpeg for one rate point (after the input, before the
    /// output format and file).
    pub fn encoder_args(self, level: f64, preset: Option<&str>) -> Vec<String> {
        let l = format_level(level);
        let preset = preset.unwrap_or("medium");
        let v: Vec<String> = match self {
            AnchorCodec::Vvc => vec![
                "-c:v".into(),
                "libvvenc".into(),
                "-preset".into(),
                preset.into(),
                "-qp".into(),
                l,
                "-qpa".into(),
                "0".into(),
                "-vvenc-params".into(),
                "IntraQPOffset=0".into(),
            ],
            AnchorCodec::Hevc => vec![
                "-c:v".into(),
                "libx265".into(),
                "-preset".into(),
                preset.into(),
                "-x265-params".into(),
                format!("qp={l}:aq-mode=0:psy-rd=0:psy-rdoq=0:keyint=1:log-level=error"),
            ],
            AnchorCodec::Av1 => vec![
                "-c:v".into(),
                "libaom-av1".into(),
                "-cpu-used".into(),
                "4".into(),
                "-still-picture".into(),
                "1".into(),
                "-aq-mode".into(),
                "0".into(),
                "-crf".into(),
                l,
                "-b:v".into(),
                "0".into(),
            ],
            AnchorCodec::Jpeg => vec![
                "-c:v".into(),
                "mjpeg".into(),
                "-pix_fmt".into(),
                "yuvj420p".into(),
                "-q:v".into(),
                l,
                "-huffman".into(),
                "optimal".into(),
            ],
            AnchorCodec::Jxl => vec![
                "-c:v".into(),
                "libjxl".into(),
                "-effort".into(),
                "7".into(),
                "-distance".into(),
                l,
            ],
            AnchorCodec::Webp => vec![
                "-c:v".into(),
                "libwebp".into(),
                "-pix_fmt".into(),
                "bgra".into(),
                "-lossless".into(),
                "0".into(),
                "-quality".into(),
                l,
            ],
        };
        v
    }

    /// ffmpeg format of the raw output (the file whose size is the rate).
    pub fn output_format(self) -> &'static [&'static str] {
        match self {
            AnchorCodec::Vvc => &["-f", "rawvideo"],
            AnchorCodec::Hevc => &["-f", "hevc"],
            AnchorCodec::Av1 => &["-f", "obu"],
            AnchorCodec::Jpeg => &["-f", "mjpeg"],
            AnchorCodec::Jxl => &["-f", "image2", "-update", "1"],
            AnchorCodec::Webp => &["-f", "webp"],
        }
    }

    /// ffmpeg input format to read the bitstream back, when it cannot be probed.
    pub fn input_format(self) -> Option<&'static str> {
        match self {
            AnchorCodec::Vvc => Some("vvc"),
            AnchorCodec::Hevc => Some("hevc"),
            AnchorCodec::Av1 => Some("obu"),
            _ => None,
        }
    }

    /// The ffmpeg encoder and decoder the codec needs.
    pub fn ffmpeg_components(self) -> (&'static str, &'static str) {
        match self {
            AnchorCodec::Vvc => ("libvvenc", "vvc"),
            AnchorCodec::Hevc => ("libx265", "hevc"),
            AnchorCodec::Av1 => ("libaom-av1", "libdav1d"),
            AnchorCodec::Jpeg => ("mjpeg", "mjpeg"),
            AnchorCodec::Jxl => ("libjxl", "libjxl"),
            AnchorCodec::Webp => ("libwebp", "webp"),
        }
    }

    /// File extension of the bitstream.
    pub fn extension(self) -> &'static str {
        match self {
            AnchorCodec::Vvc => "266",
            AnchorCodec::Hevc => "265",
            AnchorCodec::Av1 => "obu",
            AnchorCodec::Jpeg => "jpg",
            AnchorCodec::Jxl => "jxl",
            AnchorCodec::Webp => "webp",
        }
    }
}

impl fmt::Display for AnchorCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A rate parameter as written on the ffmpeg command line: integers without a fraction.
pub fn format_level(level: f64) -> String {
    if level.fract() == 0.0 && level.abs() < 1e9 {
        format!("{}", level as i64)
    } else {
        format!("{level}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in AnchorCodec::ALL {
            assert_eq!(AnchorCodec::parse(c.name()), Some(c));
            let (lo, hi) = c.level_range();
            assert!(c.default_levels().iter().all(|l| (lo..=hi).contains(l)));
        }
        assert_eq!(AnchorCodec::parse("H266"), Some(AnchorCodec::Vvc));
        assert_eq!(AnchorCodec::parse("mpeg2"), None);
    }

    #[test]
    fn vvc_settings_are_the_ctc_ones() {
        let args = AnchorCodec::Vvc.encoder_args(37.0, None).join(" ");
        assert_eq!(
            args,
            "-c:v libvvenc -preset medium -qp 37 -qpa 0 -vvenc-params IntraQPOffset=0"
        );
        assert_eq!(format_level(1.5), "1.5");
    }
}
