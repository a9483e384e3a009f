//! The curate plan: SQL over the UDFs of [`super::udf`], one statement per stage. Each stage's
//! result is registered under its name for the next; in a run the heavy ones are materialised
//! (computed once, held in memory), under `--explain` they are views and only planned.
//!
//! ```text
//! raw_pairs ─► curate_rows       every input column and r = curate_row(...), in parallel
//!           ─► curate_checked    row number, every input column, r's fields: normal forms,
//!                                tags, reason, flags, id, tag hashes                (stages 1–2)
//!           ─► curate_exact      (row, id, hashes, rank keys) of rows with no reason, ranked
//!                                within their id                                    (stage 3)
//!           ─► curate_bands      one row per (id, LSH band key) of the exact survivors
//!           ─► curate_candidates pairs sharing a bucket: the shared band keys first (a count,
//!                                cheap), then bucket_pairs over array_agg of their rows only
//!           ─► curate_edges      candidates with pair_similarity ≥ threshold
//!           ─► curate_clusters   connected_components(edges) → (id, cluster_id)     (stage 4)
//!           ─► curate_ranked     (row, id) with cluster id, size, rank, representative
//!           ─► db / rejects      the wide columns joined back by row; split_of(cluster_id),
//!                                kept rows; dropped rows with their reason           (5–6)
//! ```
//! `curate_rows` is materialised on its own, without the row number or the field extraction:
//! a window over it would pull the UDF into one partition, and extracting fields in the same
//! statement lets the optimizer inline `curate_row(...)` into every `get_field`, running it once a
//! field. `curate_checked` then only renames columns (no copies) and numbers the rows.
//!
//! Only `curate_checked` holds the wide columns (texts, tags, metadata). The dedup and cluster
//! stages carry the row number, the id, the tag hashes and the ranking keys, so their sorts,
//! repartitions and joins move a few dozen bytes a row; the wide columns are joined back once
//! for the output. The row number is an internal join key only (it may differ between runs);
//! nothing in the output depends on it.
//!
//! Ranks order by likes (most first), then created_at (earliest first), then source and item_id,
//! so every tie is broken by data and the result does not depend on partitioning.

use std::time::{Duration, Instant};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;

use super::CurateError;
use super::config::{CurateConfig, DedupLevel};
use super::udf::checked_fields;

/// Name the plan reads its input from.
pub const INPUT: &str = "raw_pairs";

/// The representative order: most likes, earliest, then data tie-breakers.
const REPRESENTATIVE_ORDER: &str =
    "COALESCE(likes, 0) DESC, created_at ASC NULLS LAST, source ASC, item_id ASC";

/// The input columns the rejects table shows, as `c.source, c.item_id, ...`.
const REJECT_COLUMNS: &str = "c.source, c.item_id, c.url, c.prompt, c.negative_prompt";

/// One named step of the plan.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Name the result is registered under.
    pub name: &'static str,
    /// The statement.
    pub sql: String,
    /// Whether a run computes it once and keeps it (else it stays a view).
    pub materialise: bool,
}

/// The stages, in order, for `config`.
pub fn stages(config: &CurateConfig) -> Vec<Stage> {
    let keep_all = config.dedup.level == DedupLevel::All;
    let threshold = config.dedup.threshold;
    let stage = |name, sql: String, materialise| Stage {
        name,
        sql,
        materialise,
    };
    let checked_columns: Vec<String> = checked_fields()
        .iter()
        .map(|f| format!("get_field(r, '{0}') AS {0}", f.name()))
        .collect();
    vec![
        stage(
            "curate_rows",
            format!("SELECT *, curate_row(prompt, negative_prompt, nsfw_level) AS r FROM {INPUT}"),
            true,
        ),
        stage(
            "curate_checked",
            format!(
                "SELECT ROW_NUMBER() OVER () AS row, * EXCLUDE (r), {checked} FROM curate_rows",
                checked = checked_columns.join(", ")
            ),
            true,
        ),
        stage(
            "curate_exact",
            format!(
                "SELECT row, id, prompt_hashes, negative_hashes, likes, created_at, source, item_id, \
                        ROW_NUMBER() OVER (PARTITION BY id ORDER BY {REPRESENTATIVE_ORDER}) AS exact_rank \
                 FROM curate_checked WHERE reason IS NULL"
            ),
            true,
        ),
        stage(
            "curate_bands",
            "SELECT id, unnest(lsh_bands(prompt_hashes, negative_hashes)) AS band \
             FROM curate_exact WHERE exact_rank = 1"
                .into(),
            true,
        ),
        stage(
            "curate_candidates",
            "SELECT DISTINCT get_field(p, 'a') AS a, get_field(p, 'b') AS b \
             FROM (SELECT unnest(pairs) AS p \
                   FROM (SELECT bucket_pairs(array_agg(id)) AS pairs FROM curate_bands \
                         WHERE band IN (SELECT band FROM curate_bands \
                                        GROUP BY band HAVING count(*) > 1) \
                         GROUP BY band))"
                .into(),
            true,
        ),
        stage(
            "curate_edges",
            format!(
                "WITH kept AS (SELECT id, prompt_hashes, negative_hashes FROM curate_exact \
                               WHERE exact_rank = 1) \
                 SELECT c.a, c.b FROM curate_candidates c \
                 JOIN kept x ON x.id = c.a \
                 JOIN kept y ON y.id = c.b \
                 WHERE pair_similarity(x.prompt_hashes, x.negative_hashes, \
                                       y.prompt_hashes, y.negative_hashes) >= {threshold:?}"
            ),
            true,
        ),
        stage(
            "curate_clusters",
            "SELECT get_field(m, 'id') AS id, get_field(m, 'cluster_id') AS cluster_id \
             FROM (SELECT unnest(cc) AS m FROM (SELECT connected_components(a, b) AS cc FROM curate_edges))"
                .into(),
            true,
        ),
        stage(
            "curate_ranked",
            format!(
                "SELECT row, id, cluster_id, \
                    COUNT(*) OVER (PARTITION BY cluster_id) AS cluster_size, \
                    ROW_NUMBER() OVER (PARTITION BY cluster_id ORDER BY {REPRESENTATIVE_ORDER}) AS cluster_rank, \
                    FIRST_VALUE(id) OVER (PARTITION BY cluster_id ORDER BY {REPRESENTATIVE_ORDER} \
                        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS cluster_rep \
                 FROM (SELECT k.row, k.id, k.likes, k.created_at, k.source, k.item_id, \
                              COALESCE(c.cluster_id, k.id) AS cluster_id \
                       FROM curate_exact k LEFT JOIN curate_clusters c ON k.id = c.id \
                       WHERE k.exact_rank = 1)"
            ),
            true,
        ),
        stage(
            "curate_db",
            format!(
                "SELECT r.id, c.prompt, c.negative_prompt, c.prompt_norm, c.negative_norm, \
                        c.prompt_tags, c.tags, c.source, c.item_id, c.url, c.model, c.sampler, \
                        c.steps, c.cfg_scale, c.width, c.height, c.likes, c.created_at, \
                        r.cluster_id, r.cluster_size, split_of(r.cluster_id) AS split, c.flags \
                 FROM curate_ranked r JOIN curate_checked c ON c.row = r.row \
                 WHERE {keep} ORDER BY r.id",
                keep = if keep_all { "TRUE" } else { "r.cluster_rank = 1" }
            ),
            false,
        ),
        stage(
            "curate_rejects",
            format!(
                "SELECT source, item_id, url, prompt, negative_prompt, 'filter' AS stage, reason, \
                        CAST(NULL AS BIGINT) AS kept_id \
                 FROM curate_checked WHERE reason IS NOT NULL \
                 UNION ALL \
                 SELECT {REJECT_COLUMNS}, 'exact_dedup', 'exact_duplicate', e.id \
                 FROM curate_exact e JOIN curate_checked c ON c.row = e.row WHERE e.exact_rank > 1 \
                 UNION ALL \
                 SELECT {REJECT_COLUMNS}, 'near_dedup', 'near_duplicate', r.cluster_rep \
                 FROM curate_ranked r JOIN curate_checked c ON c.row = r.row WHERE {drop_near} \
                 ORDER BY source, item_id",
                drop_near = if keep_all { "FALSE" } else { "r.cluster_rank > 1" }
            ),
            false,
        ),
    ]
}

/// `(stage, table)`: the table no stage after `stage` reads, dropped from the session once
/// `stage` is materialised to lower the run's peak memory. The band keys (one row per band and
/// exact survivor, 16.8 M rows at 1 M input rows) are the largest intermediate.
const LAST_READERS: [(&str, &str); 1] = [("curate_candidates", "curate_bands")];

/// Wall time of each stage of a run.
pub type StageTimes = Vec<(&'static str, Duration)>;

/// Runs the stages on `ctx` (which has `raw_pairs` and the UDFs registered), materialising the
/// heavy ones; returns the wall time of each materialised stage. `on_stage` is called as each
/// stage starts (progress display).
pub async fn run_stages(
    ctx: &SessionContext,
    config: &CurateConfig,
    mut on_stage: impl FnMut(&str),
) -> Result<StageTimes, CurateError> {
    let mut times = Vec::new();
    for stage in stages(config) {
        on_stage(stage.name);
        let started = Instant::now();
        let df = ctx
            .sql(&stage.sql)
            .await
            .map_err(|e| CurateError::plan(stage.name, e))?;
        let df = if stage.materialise {
            let cached = df
                .cache()
                .await
                .map_err(|e| CurateError::plan(stage.name, e))?;
            times.push((stage.name, started.elapsed()));
            cached
        } else {
            df
        };
        ctx.register_table(stage.name, df.into_view())
            .map_err(|e| CurateError::plan(stage.name, e))?;
        for (_, table) in LAST_READERS.iter().filter(|(s, _)| *s == stage.name) {
            ctx.deregister_table(*table)
                .map_err(|e| CurateError::plan(stage.name, e))?;
        }
    }
    Ok(times)
}

/// Plans every stage without running any and returns the text of their logical and physical
/// plans, each under its SQL (what `etl curate --explain` prints).
pub async fn explain(ctx: &SessionContext, config: &CurateConfig) -> Result<String, CurateError> {
    let mut out = String::new();
    for stage in stages(config) {
        let df = ctx
            .sql(&stage.sql)
            .await
            .map_err(|e| CurateError::plan(stage.name, e))?;
        let explained: Vec<RecordBatch> = df
            .clone()
            .explain(false, false)
            .map_err(|e| CurateError::plan(stage.name, e))?
            .collect()
            .await
            .map_err(|e| CurateError::plan(stage.name, e))?;
        let table = pretty_format_batches(&explained)
            .map_err(|e| CurateError::plan(stage.name, e.into()))?;
        out.push_str(&format!(
            "-- stage {}\n{}\n{table}\n\n",
            stage.name, stage.sql
        ));
        ctx.register_table(stage.name, df.into_view())
            .map_err(|e| CurateError::plan(stage.name, e))?;
    }
    Ok(out)
}
