//! Stage 6 bookkeeping: the `curation_report` table (rows in and out of each stage, drops per
//! reason and source, clusters, splits, length distributions) and its printed summary.
//!
//! The report is long-format, one number per row: `(stage, metric, key, source, value)`, with
//! `source = "*"` for totals and `key = ""` where a metric has no key. Every drop in
//! `curation_rejects` is counted here under its stage and reason, so
//! `input rows = output rows + Σ dropped` holds and the tests check it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Float64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

/// One number of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    /// Pipeline stage: `input`, `filter`, `exact_dedup`, `near_dedup`, `split`, `output`.
    pub stage: String,
    /// What is counted or measured.
    pub metric: String,
    /// Reason, split name or quantile; empty when none.
    pub key: String,
    /// Source name, `*` for all sources.
    pub source: String,
    /// The number.
    pub value: f64,
}

/// The whole report of one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Its rows, in the order they were added.
    pub rows: Vec<ReportRow>,
}

/// Arrow schema of `curation_report`.
pub fn report_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("stage", DataType::Utf8, false),
        Field::new("metric", DataType::Utf8, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
    ]))
}

/// Exact quantiles (nearest rank) of `values`, which it sorts.
fn quantiles(values: &mut [usize]) -> Vec<(&'static str, f64)> {
    values.sort_unstable();
    if values.is_empty() {
        return Vec::new();
    }
    let at = |q: f64| values[((q * (values.len() - 1) as f64).round()) as usize] as f64;
    let mean = values.iter().sum::<usize>() as f64 / values.len() as f64;
    vec![
        ("min", values[0] as f64),
        ("p05", at(0.05)),
        ("p25", at(0.25)),
        ("p50", at(0.5)),
        ("p75", at(0.75)),
        ("p95", at(0.95)),
        ("max", values[values.len() - 1] as f64),
        ("mean", mean),
    ]
}

impl Report {
    /// Adds one number.
    pub fn push(&mut self, stage: &str, metric: &str, key: &str, source: &str, value: f64) {
        self.rows.push(ReportRow {
            stage: stage.into(),
            metric: metric.into(),
            key: key.into(),
            source: source.into(),
            value,
        });
    }

    /// Adds `count` rows per source and their total under `stage`/`metric`/`key`.
    pub fn push_counts(
        &mut self,
        stage: &str,
        metric: &str,
        key: &str,
        per_source: &BTreeMap<String, u64>,
    ) {
        self.push(
            stage,
            metric,
            key,
            "*",
            per_source.values().sum::<u64>() as f64,
        );
        for (source, n) in per_source {
            self.push(stage, metric, key, source, *n as f64);
        }
    }

    /// Adds the character-length distribution of a string column of `batches`.
    pub fn push_lengths(&mut self, metric: &str, batches: &[RecordBatch], column: &str) {
        let mut lengths: Vec<usize> = Vec::new();
        for batch in batches {
            if let Some(col) = batch.column_by_name(column) {
                let strings = datafusion::arrow::compute::cast(col, &DataType::Utf8)
                    .expect("a string column casts to Utf8");
                let strings = strings.as_string::<i32>();
                lengths.extend(
                    (0..strings.len())
                        .filter(|&i| strings.is_valid(i))
                        .map(|i| strings.value(i).chars().count()),
                );
            }
        }
        for (q, v) in quantiles(&mut lengths) {
            self.push("output", metric, q, "*", v);
        }
    }

    /// The value of a total (`source = "*"`), if present.
    pub fn total(&self, stage: &str, metric: &str, key: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.stage == stage && r.metric == metric && r.key == key && r.source == "*")
            .map(|r| r.value)
    }

    /// The report as one batch of [`report_schema`].
    pub fn to_batch(&self) -> RecordBatch {
        let strings = |f: fn(&ReportRow) -> &str| -> Arc<dyn Array> {
            Arc::new(
                self.rows
                    .iter()
                    .map(|r| Some(f(r)))
                    .collect::<StringArray>(),
            )
        };
        RecordBatch::try_new(
            report_schema(),
            vec![
                strings(|r| &r.stage),
                strings(|r| &r.metric),
                strings(|r| &r.key),
                strings(|r| &r.source),
                Arc::new(self.rows.iter().map(|r| r.value).collect::<Float64Array>()),
            ],
        )
        .expect("columns match the report schema")
    }

    /// A few lines for people: rows through each stage, the drop reasons, the split sizes.
    pub fn summary(&self) -> String {
        let total =
            |stage: &str, metric: &str, key: &str| self.total(stage, metric, key).unwrap_or(0.0);
        let mut out = String::new();
        let input = total("input", "rows", "");
        let _ = writeln!(out, "curate: {input} raw pairs in");
        for (stage, reason_stage) in [
            ("filter", "filter"),
            ("exact_dedup", "exact_dedup"),
            ("near_dedup", "near_dedup"),
        ] {
            let out_rows = total(stage, "rows_out", "");
            let _ = writeln!(out, "  {stage:<12} {out_rows:>10} rows kept");
            for r in self
                .rows
                .iter()
                .filter(|r| r.stage == reason_stage && r.metric == "dropped" && r.source == "*")
            {
                let _ = writeln!(out, "    dropped {:<24} {:>10}", r.key, r.value);
            }
        }
        let _ = writeln!(
            out,
            "  clusters     {:>10} ({} rows in clusters of 2 or more)",
            total("near_dedup", "clusters", ""),
            total("near_dedup", "rows_in_multi_clusters", "")
        );
        let splits: Vec<String> = ["train", "val", "test"]
            .iter()
            .map(|s| format!("{s} {}", total("split", "rows", s)))
            .collect();
        let _ = writeln!(
            out,
            "  output       {:>10} rows: {}",
            total("output", "rows", ""),
            splits.join(", ")
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let mut v: Vec<usize> = (1..=101).rev().collect();
        let q: BTreeMap<_, _> = quantiles(&mut v).into_iter().collect();
        assert_eq!(q["min"], 1.0);
        assert_eq!(q["p05"], 6.0);
        assert_eq!(q["p50"], 51.0);
        assert_eq!(q["p95"], 96.0);
        assert_eq!(q["max"], 101.0);
        assert_eq!(q["mean"], 51.0);
        assert!(quantiles(&mut []).is_empty());
    }

    #[test]
    fn counts_add_a_total_row() {
        let mut r = Report::default();
        let per_source = BTreeMap::from([("a".to_string(), 2), ("b".to_string(), 3)]);
        r.push_counts("filter", "dropped", "nsfw", &per_source);
        assert_eq!(r.total("filter", "dropped", "nsfw"), Some(5.0));
        assert_eq!(r.to_batch().num_rows(), 3);
        assert!(r.summary().contains("dropped nsfw"));
    }
}
