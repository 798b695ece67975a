//! What a model expects of its input: [`ModelSpec`], and its TOML form.

use crate::Error;
use serde::{Deserialize, Serialize};

/// Largest input side a spec may ask for, and largest `resize_shorter`.
const MAX_SPEC_SIDE: u32 = 4096;

/// Order of the input tensor's axes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `[1, channels, height, width]` — PyTorch and most ONNX exports.
    #[default]
    Nchw,
    /// `[1, height, width, channels]` — TensorFlow exports.
    Nhwc,
}

/// Order of the colour channels in the input tensor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    /// Red, green, blue.
    #[default]
    Rgb,
    /// Blue, green, red (Caffe and OpenCV heritage).
    Bgr,
}

/// How to turn an image into a model's input tensor.
///
/// The image is converted to 8-bit RGB, its shorter side resized to `resize_shorter` (bilinear,
/// antialiased when shrinking; the longer side keeps the aspect ratio, rounded), the centre
/// `width` x `height` cropped, each channel value `p` mapped to `(p / 255 - mean[c]) / std[c]`, and
/// the result laid out as `layout` in `channel_order`, batch size 1, float32.
///
/// [`ModelSpec::default`] is the shipped EfficientNet-Lite0's: 256 → 224, `(p/255 - 0.498) /
/// 0.502`, NCHW, RGB, any input name. The TOML form ([`ModelSpec::from_toml`]) has the same field names:
///
/// ```toml
/// name = "EfficientNet-Lite0"        # optional, for people
/// input_name = "input"               # optional; checked against the model if given
/// width = 224
/// height = 224
/// resize_shorter = 256
/// mean = [0.498, 0.498, 0.498]
/// std = [0.502, 0.502, 0.502]
/// layout = "nchw"                    # optional: "nchw" (default) or "nhwc"
/// channel_order = "rgb"              # optional: "rgb" (default) or "bgr"
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// A name for people (e.g. in `--help` output or logs); not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The model's input name; when set, [`crate::Classifier::load`] refuses a model whose input
    /// has another name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_name: Option<String>,
    /// Input width in pixels.
    pub width: u32,
    /// Input height in pixels.
    pub height: u32,
    /// The image's shorter side is resized to this before the centre crop; at least
    /// `max(width, height)`. Equal to it means "no margin cropped" on the shorter side.
    pub resize_shorter: u32,
    /// Per-channel mean subtracted from `pixel / 255`, in R, G, B order.
    pub mean: [f32; 3],
    /// Per-channel standard deviation that divides `pixel / 255 - mean`, in R, G, B order.
    pub std: [f32; 3],
    /// Axis order of the input tensor.
    #[serde(default)]
    pub layout: Layout,
    /// Channel order of the input tensor.
    #[serde(default)]
    pub channel_order: ChannelOrder,
}

impl Default for ModelSpec {
    /// The shipped EfficientNet-Lite0's preprocessing (`models/efficientnet-lite0/model.toml`),
    /// without its `name` and `input_name`, so that it also serves other ImageNet models trained
    /// the same way whatever their input is called.
    fn default() -> Self {
        ModelSpec {
            name: None,
            input_name: None,
            width: 224,
            height: 224,
            resize_shorter: 256,
            mean: [0.498; 3],
            std: [0.502; 3],
            layout: Layout::Nchw,
            channel_order: ChannelOrder::Rgb,
        }
    }
}

/// The spec's keys, to name a key without quoting the file.
const KEYS: [&str; 9] = [
    "name",
    "input_name",
    "width",
    "height",
    "resize_shorter",
    "mean",
    "std",
    "layout",
    "channel_order",
];

/// [`Error::Spec`] for a TOML error, rebuilt from its position and the kind of its message: the
/// parser's `Display` quotes the offending line and serde's messages quote the offending value
/// or unknown key, all of it text of a file that may be protected.
fn spec_error(text: &str, e: &toml::de::Error) -> Error {
    let msg = e.message();
    let known = |k: &str| KEYS.iter().copied().find(|&known| known == k);
    // What the message expects comes from the spec's types (or the TOML grammar), not the file;
    // the last ", expected " is serde's own, whatever a quoted value contains.
    let expected = msg
        .rsplit_once(", expected ")
        .map(|(_, x)| x.lines().next().unwrap_or_default().to_owned());
    let with_expected = |what: &str| match &expected {
        Some(x) => format!("{what}; expected {x}"),
        None => what.to_owned(),
    };
    if let Some(rest) = msg.strip_prefix("missing field `") {
        // Spanned at the whole document: a line would mislead.
        let key = rest.split('`').next().and_then(known);
        return Error::Spec {
            line: None,
            column: None,
            key,
            problem: "a required key is missing".into(),
        };
    }
    let problem = if msg.starts_with("unknown field") {
        format!("unknown key; the keys are {}", KEYS.join(", "))
    } else if msg.starts_with("unknown variant") {
        with_expected("unknown value")
    } else if msg.starts_with("invalid type") {
        with_expected("wrong type")
    } else if msg.starts_with("invalid length") {
        with_expected("wrong number of values")
    } else if msg.starts_with("invalid value") {
        with_expected("invalid value")
    } else if msg.starts_with("duplicate key") {
        "a key is given twice".into()
    } else {
        // A syntax error: the grammar's "invalid <thing>" / "expected <tokens>" lines are kept,
        // anything else (a custom message naming a key) is not.
        let kept: Vec<&str> = msg
            .lines()
            .map(str::trim)
            .filter(|l| {
                l.starts_with("invalid ")
                    || l.starts_with("expected ")
                    || *l == "value is out of range"
                    || *l == "recursion limit exceeded"
            })
            .collect();
        if kept.is_empty() {
            "not valid TOML".into()
        } else {
            format!("not valid TOML: {}", kept.join("; "))
        }
    };
    let (line, column, key) = match e.span() {
        Some(span) => {
            let at = span.start.min(text.len());
            let before = text.get(..at).unwrap_or_default();
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let line_text = text[line_start..].lines().next().unwrap_or_default();
            // The key the line assigns, when it is one of the spec's own.
            let key = line_text
                .split_once('=')
                .map(|(k, _)| k.trim().trim_matches(|c| c == '"' || c == '\''))
                .and_then(known);
            let column = before[line_start..].chars().count() + 1;
            (Some(before.matches('\n').count() + 1), Some(column), key)
        }
        None => (None, None, None),
    };
    Error::Spec {
        line,
        column,
        key,
        problem,
    }
}

impl ModelSpec {
    /// Parse and check a model description. Unknown keys are refused, and every error names the
    /// key it is about.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let spec: ModelSpec = toml::from_str(text).map_err(|e| spec_error(text, &e))?;
        spec.validate()?;
        Ok(spec)
    }

    /// The TOML form of this spec (what [`ModelSpec::from_toml`] reads back).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Check the values: sides in 1..=4096, `resize_shorter` at least the larger side, `mean`
    /// finite, `std` finite and positive, `input_name` not empty.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |key, reason: String| Err(Error::SpecValue { key, reason });
        for (key, v) in [("width", self.width), ("height", self.height)] {
            if v == 0 || v > MAX_SPEC_SIDE {
                return bad(
                    key,
                    format!("is out of range; it must be between 1 and {MAX_SPEC_SIDE}"),
                );
            }
        }
        let side = self.width.max(self.height);
        if self.resize_shorter < side || self.resize_shorter > MAX_SPEC_SIDE {
            return bad(
                "resize_shorter",
                format!(
                    "is out of range; it must be at least the larger of `width` and `height` \
                     and at most {MAX_SPEC_SIDE}"
                ),
            );
        }
        if self.mean.iter().any(|m| !m.is_finite()) {
            return bad("mean", "every value must be a finite number".to_string());
        }
        if self.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return bad(
                "std",
                "every value must be a finite number above 0".to_string(),
            );
        }
        if matches!(&self.input_name, Some(n) if n.is_empty()) {
            return bad(
                "input_name",
                "is empty; leave it out to accept any name".to_string(),
            );
        }
        Ok(())
    }

    /// The input tensor's shape, `[1, 3, height, width]` or `[1, height, width, 3]`.
    pub fn input_shape(&self) -> [usize; 4] {
        let (h, w) = (self.height as usize, self.width as usize);
        match self.layout {
            Layout::Nchw => [1, 3, h, w],
            Layout::Nhwc => [1, h, w, 3],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_round_trips_through_toml() {
        let spec = ModelSpec::default();
        assert_eq!(ModelSpec::from_toml(&spec.to_toml()).unwrap(), spec);
    }

    #[test]
    fn optional_keys_default() {
        let spec = ModelSpec::from_toml(
            "width = 224\nheight = 224\nresize_shorter = 256\nmean = [0.498, 0.498, 0.498]\n\
             std = [0.502, 0.502, 0.502]\n",
        )
        .unwrap();
        assert_eq!(spec.layout, Layout::Nchw);
        assert_eq!(spec.channel_order, ChannelOrder::Rgb);
        assert_eq!(spec.input_name, None);
    }
}
