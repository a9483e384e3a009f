//! `etl curate`: from `raw_pairs` to the Negative Prompts DB, as one DataFusion plan.
//!
//! ```text
//!  raw_pairs vN ─► 1 normalise ─► 2 filter ─► 3 exact dedup ─► 4 near-dup clusters ─► 5 split
//!                                  │            │                │  (MinHash-LSH candidates,
//!                                  ▼            ▼                ▼   exact verification,
//!                          curation_rejects (stage, reason, kept_id)  connected components)
//!                                                                         │
//!   6 write: curation_rejects, negative_prompts_db, curation_report ◄─────┘
//!            (one commit each; lineage: raw_pairs vN + config hash)
//! ```
//! - [`config`]: the TOML configuration, its defaults and validation.
//! - [`normalise`], [`filters`], [`minhash`], [`components`], [`split`]: the stage rules as pure
//!   functions; [`udf`] wraps them for DataFusion; [`plan`] is the SQL of every stage.
//! - [`report`]: the `curation_report` table and the printed summary.
//!
//! The same input version and config give the same rows, ids and splits on any thread count:
//! ids are hashes of canonical tags, ranks break ties by data, clusters take their smallest id.
//! `negative_prompts_db` is written after `curation_rejects` and before `curation_report`, each
//! as one atomic commit, so a run killed at any point leaves the previous version readable.
//!
//! Tests: `cargo test -p negopt-etl curate` (unit tests here, integration tests in
//! `etl/tests/curate*.rs`); the 1M-row benchmark: `cargo bench -p negopt-benches --bench curate`.

pub mod cli;
pub mod components;
pub mod config;
pub mod filters;
pub mod minhash;
pub mod normalise;
pub mod plan;
pub mod report;
pub mod split;
pub mod synthetic;
pub mod udf;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};
use negopt_catalog::{At, Catalog, CatalogError, Commit};
use serde_json::json;

pub use cli::CurateArgs;
pub use config::CurateConfig;
pub use plan::StageTimes;
pub use report::Report;

/// Table names the curate step reads and writes.
pub mod tables {
    /// Input: what `etl crawl` writes.
    pub const RAW_PAIRS: &str = "raw_pairs";
    /// Output: the curated pairs.
    pub const DB: &str = "negative_prompts_db";
    /// Output: every dropped row with its stage and reason.
    pub const REJECTS: &str = "curation_rejects";
    /// Output: counts and distributions of the run.
    pub const REPORT: &str = "curation_report";
}

/// Columns the plan needs in `raw_pairs`.
pub const REQUIRED_COLUMNS: [&str; 14] = [
    "source",
    "item_id",
    "url",
    "prompt",
    "negative_prompt",
    "model",
    "sampler",
    "steps",
    "cfg_scale",
    "width",
    "height",
    "likes",
    "created_at",
    "nsfw_level",
];

/// What can go wrong in `etl curate`.
#[derive(Debug, thiserror::Error)]
pub enum CurateError {
    /// The configuration is invalid.
    #[error("invalid curate config {origin}: {message}")]
    Config {
        /// File or `<toml>`.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// The configuration file could not be read.
    #[error("cannot read curate config {path}")]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The input lacks columns the plan needs.
    #[error(
        "input table {table} lacks column(s) {missing:?}\nhelp: raw_pairs is written by `etl crawl`; it needs {REQUIRED_COLUMNS:?}"
    )]
    MissingColumns {
        /// The table.
        table: String,
        /// Missing column names.
        missing: Vec<String>,
    },
    /// A stage failed to plan or run.
    #[error("curate stage {stage} failed")]
    Plan {
        /// The stage.
        stage: String,
        /// DataFusion's error.
        source: Box<DataFusionError>,
    },
    /// Reading or writing the catalog failed.
    #[error(transparent)]
    Catalog(Box<CatalogError>),
}

impl From<CatalogError> for CurateError {
    fn from(e: CatalogError) -> Self {
        Self::Catalog(Box::new(e))
    }
}

impl CurateError {
    fn plan(stage: &str, source: DataFusionError) -> Self {
        Self::Plan {
            stage: stage.into(),
            source: Box::new(source),
        }
    }
}

/// Everything one run produced, before it is written.
#[derive(Debug)]
pub struct CurateOutput {
    /// Rows of `negative_prompts_db`, sorted by id.
    pub db: Vec<RecordBatch>,
    /// Schema of `db` (also when it has no rows).
    pub db_schema: SchemaRef,
    /// Rows of `curation_rejects`, sorted by source and item id.
    pub rejects: Vec<RecordBatch>,
    /// Schema of `rejects`.
    pub rejects_schema: SchemaRef,
    /// The report.
    pub report: Report,
    /// Wall time of each materialised stage.
    pub times: StageTimes,
}

/// A DataFusion session with `threads` partitions and the curate UDFs registered.
pub fn session(config: &CurateConfig, threads: usize) -> SessionContext {
    let ctx = SessionContext::new_with_config(
        SessionConfig::new().with_target_partitions(threads.max(1)),
    );
    udf::register(&ctx, config);
    ctx
}

/// Checks that `schema` has every column of [`REQUIRED_COLUMNS`].
pub fn check_input(schema: &datafusion::arrow::datatypes::Schema) -> Result<(), CurateError> {
    let missing: Vec<String> = REQUIRED_COLUMNS
        .iter()
        .filter(|c| schema.field_with_name(c).is_err())
        .map(|c| c.to_string())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CurateError::MissingColumns {
            table: tables::RAW_PAIRS.into(),
            missing,
        })
    }
}

/// Runs the plan on `ctx`, where `raw_pairs` is registered, and collects the outputs.
pub async fn curate(
    ctx: &SessionContext,
    config: &CurateConfig,
    on_stage: impl FnMut(&str),
) -> Result<CurateOutput, CurateError> {
    let input = ctx
        .table(plan::INPUT)
        .await
        .map_err(|e| CurateError::plan("input", e))?;
    check_input(input.schema().as_arrow())?;
    let mut times = plan::run_stages(ctx, config, on_stage).await?;
    let collect = |name: &'static str| async move {
        let started = std::time::Instant::now();
        let df = ctx
            .table(name)
            .await
            .map_err(|e| CurateError::plan(name, e))?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await.map_err(|e| CurateError::plan(name, e))?;
        let batches: Vec<RecordBatch> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
        let table = MemTable::try_new(Arc::clone(&schema), vec![batches.clone()])
            .map_err(|e| CurateError::plan(name, e))?;
        ctx.deregister_table(name)
            .map_err(|e| CurateError::plan(name, e))?;
        ctx.register_table(name, Arc::new(table))
            .map_err(|e| CurateError::plan(name, e))?;
        Ok::<_, CurateError>((schema, batches, started.elapsed()))
    };
    let (db_schema, db, db_time) = collect("curate_db").await?;
    times.push(("curate_db", db_time));
    let (rejects_schema, rejects, rejects_time) = collect("curate_rejects").await?;
    times.push(("curate_rejects", rejects_time));
    let report = build_report(ctx, &db, &rejects).await?;
    Ok(CurateOutput {
        db,
        db_schema,
        rejects,
        rejects_schema,
        report,
        times,
    })
}

/// Runs the plan on in-memory `raw_pairs` batches (tests, benchmarks).
pub async fn curate_batches(
    raw: Vec<RecordBatch>,
    schema: SchemaRef,
    config: &CurateConfig,
    threads: usize,
) -> Result<CurateOutput, CurateError> {
    let ctx = session(config, threads);
    let table = MemTable::try_new(schema, vec![raw]).map_err(|e| CurateError::plan("input", e))?;
    ctx.register_table(plan::INPUT, Arc::new(table))
        .map_err(|e| CurateError::plan("input", e))?;
    curate(&ctx, config, |_| {}).await
}

/// Versions written by [`curate_catalog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The `raw_pairs` version read.
    pub raw_pairs: u64,
    /// New `negative_prompts_db` version.
    pub db: u64,
    /// New `curation_rejects` version.
    pub rejects: u64,
    /// New `curation_report` version.
    pub report: u64,
}

/// Curates `raw_pairs` at `at` from `catalog` and writes the three output tables.
pub async fn curate_catalog(
    catalog: &Catalog,
    config: &CurateConfig,
    at: At,
    threads: usize,
    on_stage: impl FnMut(&str),
) -> Result<(CurateOutput, Written), CurateError> {
    let raw_version = match at {
        At::Version(v) => v,
        _ => catalog.latest_version(tables::RAW_PAIRS).await?,
    };
    let ctx = session(config, threads);
    let provider = catalog
        .provider(tables::RAW_PAIRS, At::Version(raw_version), &ctx)
        .await?;
    ctx.register_table(plan::INPUT, provider)
        .map_err(|e| CurateError::plan("input", e))?;
    let output = curate(&ctx, config, on_stage).await?;
    let commit = Commit::new("curate")
        .with_params(json!({ "config_hash": config.hash(), "config": config.to_toml() }))
        .with_input(tables::RAW_PAIRS, raw_version);
    let write = |name: &'static str, schema: SchemaRef, batches: Vec<RecordBatch>| {
        let commit = commit.clone();
        async move {
            catalog.ensure_table(name, schema).await?;
            Ok::<u64, CurateError>(catalog.overwrite(name, batches, commit).await?)
        }
    };
    // Rejects first, the DB next, the report last: a run killed in between leaves the DB at
    // either its old or its new version, never half written.
    let rejects = write(
        tables::REJECTS,
        Arc::clone(&output.rejects_schema),
        output.rejects.clone(),
    )
    .await?;
    let db = write(tables::DB, Arc::clone(&output.db_schema), output.db.clone()).await?;
    let report_batch = output.report.to_batch();
    let report = write(tables::REPORT, report_batch.schema(), vec![report_batch]).await?;
    Ok((
        output,
        Written {
            raw_pairs: raw_version,
            db,
            rejects,
            report,
        },
    ))
}

/// Rows per combination of values of the string `columns` in `batches` (NULL counts as "").
fn count_by(batches: &[RecordBatch], columns: &[&str]) -> BTreeMap<Vec<String>, u64> {
    let mut counts = BTreeMap::new();
    for batch in batches {
        let cols: Vec<_> = columns
            .iter()
            .map(|c| {
                let col = batch
                    .column_by_name(c)
                    .expect("column of the plan's own output");
                datafusion::arrow::compute::cast(col, &datafusion::arrow::datatypes::DataType::Utf8)
                    .expect("a string column casts to Utf8")
            })
            .collect();
        for i in 0..batch.num_rows() {
            let key: Vec<String> = cols
                .iter()
                .map(|c| {
                    let s = c.as_string::<i32>();
                    if s.is_valid(i) {
                        s.value(i).to_string()
                    } else {
                        String::new()
                    }
                })
                .collect();
            *counts.entry(key).or_insert(0) += 1;
        }
    }
    counts
}

async fn scalar_count(ctx: &SessionContext, sql: &str) -> Result<u64, CurateError> {
    let df = ctx
        .sql(sql)
        .await
        .map_err(|e| CurateError::plan("report", e))?;
    let batches = df
        .collect()
        .await
        .map_err(|e| CurateError::plan("report", e))?;
    Ok(batches
        .first()
        .map(|b| {
            b.column(0)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(0)
        })
        .unwrap_or(0) as u64)
}

async fn build_report(
    ctx: &SessionContext,
    db: &[RecordBatch],
    rejects: &[RecordBatch],
) -> Result<Report, CurateError> {
    let input_batches = ctx
        .sql(&format!("SELECT source FROM {}", plan::INPUT))
        .await
        .map_err(|e| CurateError::plan("report", e))?
        .collect()
        .await
        .map_err(|e| CurateError::plan("report", e))?;
    let per_source = |counts: BTreeMap<Vec<String>, u64>| -> BTreeMap<String, u64> {
        counts.into_iter().map(|(k, n)| (k[0].clone(), n)).collect()
    };
    let mut report = Report::default();
    let input = per_source(count_by(&input_batches, &["source"]));
    report.push_counts("input", "rows", "", &input);
    let drops = count_by(rejects, &["stage", "reason", "source"]);
    let mut remaining = input.clone();
    for stage in ["filter", "exact_dedup", "near_dedup"] {
        let mut by_reason: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for (key, n) in drops.iter().filter(|(k, _)| k[0] == stage) {
            by_reason
                .entry(key[1].clone())
                .or_default()
                .insert(key[2].clone(), *n);
            *remaining.entry(key[2].clone()).or_insert(0) -= n;
        }
        for (reason, per_source) in &by_reason {
            report.push_counts(stage, "dropped", reason, per_source);
        }
        report.push_counts(stage, "rows_out", "", &remaining);
    }
    report.push(
        "near_dedup",
        "candidate_pairs",
        "",
        "*",
        scalar_count(ctx, "SELECT count(*) FROM curate_candidates").await? as f64,
    );
    report.push(
        "near_dedup",
        "verified_pairs",
        "",
        "*",
        scalar_count(ctx, "SELECT count(*) FROM curate_edges").await? as f64,
    );
    report.push(
        "near_dedup",
        "clusters",
        "",
        "*",
        scalar_count(ctx, "SELECT count(DISTINCT cluster_id) FROM curate_ranked").await? as f64,
    );
    report.push(
        "near_dedup",
        "rows_in_multi_clusters",
        "",
        "*",
        scalar_count(
            ctx,
            "SELECT count(*) FROM curate_ranked WHERE cluster_size > 1",
        )
        .await? as f64,
    );
    for (key, n) in count_by(db, &["split"]) {
        report.push("split", "rows", &key[0], "*", n as f64);
    }
    report.push_counts("output", "rows", "", &per_source(count_by(db, &["source"])));
    report.push_lengths("prompt_chars", db, "prompt_norm");
    report.push_lengths("negative_chars", db, "negative_norm");
    Ok(report)
}
