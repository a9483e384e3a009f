//! Training metrics: one row per (run, step, split, metric) in `<run>/metrics.jsonl` as they
//! happen, appended to the catalog table `train_metrics` at each checkpoint and at the end,
//! and drawn as a PNG loss curve in the run directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use negopt_catalog::{Catalog, Commit};
use serde::{Deserialize, Serialize};

use crate::data::block_on;
use crate::error::{EngineError, Result};

/// The catalog table metrics go to.
pub const TABLE: &str = "train_metrics";

/// One measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Run id.
    pub run_id: String,
    /// Optimizer step.
    pub step: u64,
    /// `train`, `val` or `test`.
    pub split: String,
    /// `loss`, `lr`, `grad_norm`, `tokens_per_s`, ...
    pub metric: String,
    /// The value.
    pub value: f64,
}

/// `train_metrics`' schema.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("step", DataType::Int64, false),
        Field::new("split", DataType::Utf8, false),
        Field::new("metric", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
    ]))
}

/// Creates `train_metrics` if missing (or checks its schema) before a run writes to it.
pub fn ensure_table(catalog: &Catalog) -> Result<()> {
    block_on(catalog.ensure_table(TABLE, schema()))?
        .map_err(|e| EngineError::Catalog(e.to_string()))
}

/// The run's metric log.
#[derive(Debug)]
pub struct MetricLog {
    path: PathBuf,
    rows: Vec<Metric>,
    flushed: usize,
}

impl MetricLog {
    /// Opens `<run>/metrics.jsonl`, keeping only rows at or before `upto_step` (a resumed run
    /// drops what the killed run logged after its last checkpoint).
    pub fn open(run_dir: &Path, upto_step: u64) -> Result<MetricLog> {
        let path = run_dir.join("metrics.jsonl");
        let mut rows = Vec::new();
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(|e| EngineError::io(&path, e))?;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let m: Metric = serde_json::from_str(line).map_err(|e| {
                    EngineError::input(path.display().to_string(), format!("bad metrics line: {e}"))
                })?;
                if m.step <= upto_step {
                    rows.push(m);
                }
            }
        }
        let mut log = MetricLog {
            path,
            flushed: rows.len(),
            rows,
        };
        log.rewrite()?;
        Ok(log)
    }

    fn rewrite(&mut self) -> Result<()> {
        let mut text = String::new();
        for m in &self.rows {
            text.push_str(
                &serde_json::to_string(m).map_err(|e| crate::internal_err!("metric json: {e}"))?,
            );
            text.push('\n');
        }
        std::fs::write(&self.path, text).map_err(|e| EngineError::io(&self.path, e))
    }

    /// Records a measurement (appended to the file at once).
    pub fn push(&mut self, m: Metric) -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(|e| EngineError::io(&self.path, e))?;
        let line =
            serde_json::to_string(&m).map_err(|e| crate::internal_err!("metric json: {e}"))?;
        writeln!(f, "{line}").map_err(|e| EngineError::io(&self.path, e))?;
        self.rows.push(m);
        Ok(())
    }

    /// Every row so far.
    pub fn rows(&self) -> &[Metric] {
        &self.rows
    }

    /// `(step, value)` of one series.
    pub fn series(&self, split: &str, metric: &str) -> Vec<(u64, f64)> {
        self.rows
            .iter()
            .filter(|m| m.split == split && m.metric == metric)
            .map(|m| (m.step, m.value))
            .collect()
    }

    /// Marks as sent the rows of `run_id` the catalog already holds: every flush is one commit
    /// of all rows up to a checkpoint, so the catalog's largest step for the run tells which
    /// rows a killed run managed to send (a kill between checkpoint and flush loses nothing,
    /// a resumed run duplicates nothing).
    pub fn sync_with_catalog(&mut self, catalog: &Catalog, run_id: &str) -> Result<()> {
        let catalog_err = |e: negopt_catalog::CatalogError| EngineError::Catalog(e.to_string());
        let mut max_step: Option<u64> = None;
        for batch in
            block_on(catalog.read(TABLE, negopt_catalog::At::Latest))?.map_err(catalog_err)?
        {
            let cast = |i: usize, t: &DataType| {
                arrow::compute::cast(batch.column(i), t)
                    .map_err(|e| crate::internal_err!("train_metrics column {i}: {e}"))
            };
            let (ids, steps) = (cast(0, &DataType::Utf8)?, cast(1, &DataType::Int64)?);
            let ids = ids
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| crate::internal_err!("run_id column"))?;
            let steps = steps
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or_else(|| crate::internal_err!("step column"))?;
            for i in 0..batch.num_rows() {
                if ids.value(i) == run_id {
                    max_step = max_step.max(Some(steps.value(i) as u64));
                }
            }
        }
        self.flushed = match max_step {
            Some(m) => self.rows.iter().take_while(|r| r.step <= m).count(),
            None => 0,
        };
        Ok(())
    }

    /// Appends rows not yet sent to `train_metrics` as one commit.
    pub fn flush_to_catalog(&mut self, catalog: &Catalog, params: serde_json::Value) -> Result<()> {
        let new = &self.rows[self.flushed..];
        if new.is_empty() {
            return Ok(());
        }
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    new.iter().map(|m| m.run_id.as_str()),
                )),
                Arc::new(Int64Array::from_iter_values(
                    new.iter().map(|m| m.step as i64),
                )),
                Arc::new(StringArray::from_iter_values(
                    new.iter().map(|m| m.split.as_str()),
                )),
                Arc::new(StringArray::from_iter_values(
                    new.iter().map(|m| m.metric.as_str()),
                )),
                Arc::new(Float64Array::from_iter_values(new.iter().map(|m| m.value))),
            ],
        )
        .map_err(|e| crate::internal_err!("metrics batch: {e}"))?;
        let catalog_err = |e: negopt_catalog::CatalogError| EngineError::Catalog(e.to_string());
        block_on(catalog.append(
            TABLE,
            vec![batch],
            Commit::new("engine train").with_params(params),
        ))?
        .map_err(catalog_err)?;
        self.flushed = self.rows.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(step: u64) -> Metric {
        Metric {
            run_id: "r".into(),
            step,
            split: "train".into(),
            metric: "loss".into(),
            value: step as f64,
        }
    }

    #[test]
    fn flushes_reach_the_catalog_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open_or_create(dir.path().join("npdb")).unwrap();
        ensure_table(&catalog).unwrap();
        let mut log = MetricLog::open(dir.path(), 0).unwrap();
        log.push(metric(1)).unwrap();
        log.flush_to_catalog(&catalog, serde_json::json!({}))
            .unwrap();
        log.push(metric(2)).unwrap();
        log.flush_to_catalog(&catalog, serde_json::json!({}))
            .unwrap();
        // A resumed log learns from the catalog what was sent and re-sends nothing.
        let mut again = MetricLog::open(dir.path(), 2).unwrap();
        again.sync_with_catalog(&catalog, "r").unwrap();
        again
            .flush_to_catalog(&catalog, serde_json::json!({}))
            .unwrap();
        let rows: usize = block_on(catalog.read(TABLE, negopt_catalog::At::Latest))
            .unwrap()
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(rows, 2);
    }
}
