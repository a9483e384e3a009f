//! `engine eval --stage sft`: test-split NLL and perplexity, and the tag-set F1 of generated
//! negative prompts against the ground truth, next to the baseline that always answers the
//! train split's most common negative prompt.
//!
//! Tags are the comma-separated parts of a negative prompt, lower-cased and trimmed; an
//! example's F1 compares its predicted and true tag sets; the reported F1 is the mean.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use crate::backend::Backend;
use crate::data::{Batcher, PairSource, Split, pairs, read_pairs, tokenize};
use crate::error::Result;
use crate::generate::{Strategy, generate};
use crate::t5::model::T5Model;
use crate::tokenizer::Tokenizer;
use crate::train::eval_loss;

/// The tag set of a negative prompt.
pub fn tags(text: &str) -> BTreeSet<String> {
    text.split(',')
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// F1 of a predicted tag set against the truth (1 when both are empty).
pub fn tag_f1(pred: &BTreeSet<String>, truth: &BTreeSet<String>) -> f64 {
    if pred.is_empty() && truth.is_empty() {
        return 1.0;
    }
    let hit = pred.intersection(truth).count() as f64;
    if hit == 0.0 {
        return 0.0;
    }
    let (p, r) = (hit / pred.len() as f64, hit / truth.len() as f64);
    2.0 * p * r / (p + r)
}

/// The key with the highest count (ties: the lexicographically smallest; `""` when empty).
fn most_counted(counts: HashMap<String, usize>) -> String {
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(s, _)| s)
        .unwrap_or_default()
}

/// The most common negative prompt of `source`'s train split, counted while streaming it.
pub fn most_common_negative(source: &dyn PairSource) -> Result<String> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for p in pairs(source, Split::Train)? {
        *counts.entry(p?.negative).or_default() += 1;
    }
    Ok(most_counted(counts))
}

/// What `engine eval --stage sft` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SftReport {
    /// Test examples.
    pub examples: usize,
    /// Mean token NLL.
    pub nll: f64,
    /// exp(nll).
    pub perplexity: f64,
    /// Mean tag-set F1 of the model's greedy outputs.
    pub model_f1: f64,
    /// Mean tag-set F1 of always answering the most common train negative.
    pub baseline_f1: f64,
    /// That baseline answer.
    pub baseline: String,
    /// A few (prompt, generated, truth) triples.
    pub samples: Vec<(String, String, String)>,
}

/// Evaluates `model` on the test split of `source`; its train split gives the baseline.
pub fn evaluate_sft(
    be: &dyn Backend,
    model: &T5Model,
    tok: &Tokenizer,
    source: &dyn PairSource,
    max_source: usize,
    max_target: usize,
    batch_size: usize,
) -> Result<SftReport> {
    let test = read_pairs(source, Split::Test)?;
    let batcher = Batcher::new(
        tokenize(tok, &test, max_source, max_target)?,
        batch_size,
        0,
        tok.pad_id,
        model.config.decoder_start_token_id,
    );
    let nll = eval_loss(be, model, &batcher, usize::MAX)?;
    let baseline = most_common_negative(source)?;
    let base_tags = tags(&baseline);
    let mut model_f1 = 0.0;
    let mut baseline_f1 = 0.0;
    let mut samples = Vec::new();
    for chunk in test.chunks(batch_size.max(1)) {
        let prompts: Vec<String> = chunk.iter().map(|p| p.prompt.clone()).collect();
        let outs = generate(
            be,
            model,
            tok,
            &prompts,
            Strategy::Greedy,
            max_source,
            max_target,
        )?;
        for (p, out) in chunk.iter().zip(outs) {
            let truth = tags(&p.negative);
            model_f1 += tag_f1(&tags(&out), &truth);
            baseline_f1 += tag_f1(&base_tags, &truth);
            if samples.len() < 5 {
                samples.push((p.prompt.clone(), out, p.negative.clone()));
            }
        }
    }
    let n = test.len().max(1) as f64;
    Ok(SftReport {
        examples: test.len(),
        nll,
        perplexity: nll.exp(),
        model_f1: model_f1 / n,
        baseline_f1: baseline_f1 / n,
        baseline,
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_sets_and_f1() {
        let t = tags(" Blurry, lowres ,, watermark");
        assert_eq!(
            t,
            ["blurry", "lowres", "watermark"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        );
        assert_eq!(tag_f1(&t, &t), 1.0);
        let p = tags("blurry, text");
        // precision 1/2, recall 1/3 → F1 = 0.4
        assert!((tag_f1(&p, &t) - 0.4).abs() < 1e-12);
        assert_eq!(tag_f1(&tags("x"), &t), 0.0);
        let counts = |kv: &[(&str, usize)]| kv.iter().map(|&(k, v)| (k.to_string(), v)).collect();
        assert_eq!(most_counted(counts(&[("b", 1), ("d", 2)])), "d");
        assert_eq!(
            most_counted(counts(&[("z", 2), ("y", 2)])),
            "y",
            "ties: smallest"
        );
        assert_eq!(most_counted(HashMap::new()), "");
    }
}
