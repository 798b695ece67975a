//! Scores → probabilities → ranked, labelled predictions, and their text and JSON forms.

use crate::Error;
use serde::Serialize;
use std::fmt::Write as _;

/// One of the top-k classes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    /// 1 for the most probable class.
    pub rank: usize,
    /// The class index (0-based; line `index + 1` of the labels file).
    pub index: usize,
    /// The class label, as in the labels file.
    pub label: String,
    /// Softmax probability, 0 to 1.
    pub probability: f32,
}

/// Numerically stable softmax: the largest score is subtracted before `exp`, and the sum is
/// accumulated in f64. Refuses NaN or infinite scores ([`Error::Run`]) and an empty slice.
pub fn softmax(scores: &[f32]) -> Result<Vec<f32>, Error> {
    if let Some((i, s)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
        return Err(Error::run(format!(
            "the model produced a non-finite score ({s}) for class {i}"
        )));
    }
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return Err(Error::run("the model produced no scores"));
    }
    let exps: Vec<f64> = scores.iter().map(|&s| f64::from(s - max).exp()).collect();
    // The largest term is exp(0) = 1, so the sum is at least 1.
    let sum: f64 = exps.iter().sum();
    Ok(exps.iter().map(|&e| (e / sum) as f32).collect())
}

/// The `k` most probable classes, most probable first (ties: lower index first), labelled.
///
/// `k = 0` is refused ([`Error::InvalidTopK`]); `k` above the number of classes is clamped to
/// it. `labels` must have one label per probability (a [`crate::Classifier`] checks this when it
/// loads); missing labels are shown as `class N`.
pub fn top_k(probabilities: &[f32], labels: &[String], k: usize) -> Result<Vec<Prediction>, Error> {
    if k == 0 {
        return Err(Error::InvalidTopK);
    }
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| {
        probabilities[b]
            .total_cmp(&probabilities[a])
            .then(a.cmp(&b))
    });
    Ok(order
        .into_iter()
        .take(k)
        .enumerate()
        .map(|(r, index)| Prediction {
            rank: r + 1,
            index,
            label: labels
                .get(index)
                .cloned()
                .unwrap_or_else(|| format!("class {index}")),
            probability: probabilities[index],
        })
        .collect())
}

/// One line per prediction: rank, probability as a percentage, label and class index, e.g.
/// ` 1  38.35%  tiger cat  (282)`. Control characters in labels (which come from an untrusted
/// file and could carry terminal escapes) are shown escaped.
pub fn format_text(predictions: &[Prediction]) -> String {
    let mut out = String::new();
    for p in predictions {
        let label: String = p
            .label
            .chars()
            .flat_map(|c| {
                let escaped: Vec<char> = if c.is_control() {
                    c.escape_default().collect()
                } else {
                    vec![c]
                };
                escaped
            })
            .collect();
        let _ = writeln!(
            out,
            "{:>2}  {:>6.2}%  {}  ({})",
            p.rank,
            f64::from(p.probability) * 100.0,
            label,
            p.index
        );
    }
    out
}

/// A JSON array of `{"rank", "index", "label", "probability"}` objects, on one line.
pub fn format_json(predictions: &[Prediction]) -> String {
    serde_json::to_string(predictions).unwrap_or_else(|_| "[]".to_string())
}

/// The result file of one run: for one image its top-k as [`format_text`] lines or a
/// [`format_json`] array; for several, a `# path` heading per image (text) or an array of
/// `{"image", "predictions"}` objects (JSON). Ends with a newline.
pub fn format_results(results: &[(String, Vec<Prediction>)], json: bool) -> String {
    match (results, json) {
        ([(_, top)], false) => format_text(top),
        ([(_, top)], true) => format_json(top) + "\n",
        (_, false) => results
            .iter()
            .map(|(image, top)| format!("# {image}\n{}", format_text(top)))
            .collect::<Vec<_>>()
            .join("\n"),
        (_, true) => {
            let items: Vec<String> = results
                .iter()
                .map(|(image, top)| {
                    let image = serde_json::to_string(image).unwrap_or_default();
                    format!("{{\"image\":{image},\"predictions\":{}}}", format_json(top))
                })
                .collect();
            format!("[{}]\n", items.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_is_stable_for_large_scores() {
        let p = softmax(&[1000.0, 1000.0, -1000.0]).unwrap();
        assert!((p[0] - 0.5).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6 && p[2] == 0.0);
        let p = softmax(&[-5000.0, -5001.0]).unwrap();
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn softmax_refuses_non_finite_and_empty() {
        assert!(matches!(softmax(&[1.0, f32::NAN]), Err(Error::Run { .. })));
        assert!(matches!(softmax(&[f32::INFINITY]), Err(Error::Run { .. })));
        assert!(matches!(softmax(&[]), Err(Error::Run { .. })));
    }

    #[test]
    fn top_k_ranks_clamps_and_refuses_zero() {
        let labels: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let p = [0.2, 0.5, 0.3];
        let top = top_k(&p, &labels, 2).unwrap();
        assert_eq!(
            (top[0].rank, top[0].index, top[0].label.as_str()),
            (1, 1, "b")
        );
        assert_eq!((top[1].rank, top[1].index), (2, 2));
        assert_eq!(top_k(&p, &labels, 99).unwrap().len(), 3);
        assert!(matches!(top_k(&p, &labels, 0), Err(Error::InvalidTopK)));
    }

    #[test]
    fn formats() {
        let preds = vec![Prediction {
            rank: 1,
            index: 282,
            label: "tiger cat\u{1b}[2J".into(),
            probability: 0.38349,
        }];
        assert_eq!(
            format_text(&preds),
            " 1   38.35%  tiger cat\\u{1b}[2J  (282)\n"
        );
        let json: serde_json::Value = serde_json::from_str(&format_json(&preds)).unwrap();
        assert_eq!(json[0]["index"], 282);
        assert_eq!(json[0]["rank"], 1);
        assert_eq!(json[0]["label"], "tiger cat\u{1b}[2J");
    }
}
