//! The crawl's two catalog tables and how a batch of crawl results becomes one commit to each.
//!
//! - `raw_pages`: every fetched answer (also those that failed to parse, with the error), keyed
//!   by `(url, sha256)`: an unchanged page fetched again is not stored twice.
//! - `raw_pairs`: every pair, keyed by `(source, item_id)`. New keys are appended; a key already
//!   stored is upserted on a re-crawl, and skipped when resuming (the interrupted run stored it
//!   moments ago, from the same page).
//!
//! The key sets are read from the tables when the crawl starts, so the rule holds across runs.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, AsArray, BinaryBuilder, Float64Builder, Int32Builder, Int64Builder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, Utc};
use negopt_catalog::{At, Catalog, CatalogError, Commit};

use crate::sources::PairRecord;

/// Name of the pages table.
pub const RAW_PAGES: &str = "raw_pages";
/// Name of the pairs table.
pub const RAW_PAIRS: &str = "raw_pairs";
/// Key columns of `raw_pairs`.
pub const PAIR_KEYS: [&str; 2] = ["source", "item_id"];

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Schema of `raw_pages`.
pub static PAGES_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("url", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("status", DataType::Int32, false),
        Field::new("fetched_at", timestamp(), false),
        Field::new("content_type", DataType::Utf8, true),
        Field::new("sha256", DataType::Utf8, false),
        Field::new("body_len", DataType::Int64, false),
        Field::new("body_zstd", DataType::Binary, false),
        Field::new("items", DataType::Int64, false),
        Field::new("error", DataType::Utf8, true),
    ]))
});

/// Schema of `raw_pairs`.
pub static PAIRS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("item_id", DataType::Utf8, false),
        Field::new("url", DataType::Utf8, false),
        Field::new("prompt", DataType::Utf8, false),
        Field::new("negative_prompt", DataType::Utf8, true),
        Field::new("model", DataType::Utf8, true),
        Field::new("sampler", DataType::Utf8, true),
        Field::new("steps", DataType::Int64, true),
        Field::new("cfg_scale", DataType::Float64, true),
        Field::new("seed", DataType::Int64, true),
        Field::new("width", DataType::Int32, true),
        Field::new("height", DataType::Int32, true),
        Field::new("likes", DataType::Int64, true),
        Field::new("created_at", timestamp(), true),
        Field::new("nsfw_level", DataType::Utf8, true),
        Field::new("fetched_at", timestamp(), false),
        Field::new("page_sha256", DataType::Utf8, false),
    ]))
});

/// One fetched page as stored (body already compressed).
#[derive(Debug, Clone)]
pub struct PageRow {
    /// Final URL.
    pub url: String,
    /// Source name.
    pub source: String,
    /// HTTP status.
    pub status: u16,
    /// Fetch time.
    pub fetched_at: DateTime<Utc>,
    /// Content-Type.
    pub content_type: Option<String>,
    /// Hex SHA-256 of the (decoded) body.
    pub sha256: String,
    /// Decoded body length.
    pub body_len: usize,
    /// zstd-compressed body.
    pub body_zstd: Vec<u8>,
    /// Records parsed from it.
    pub items: usize,
    /// Parse error, when it failed.
    pub error: Option<String>,
}

/// A pair as stored: the source's record plus when and from which page body it came.
#[derive(Debug, Clone)]
pub struct PairRow {
    /// The source's record.
    pub record: PairRecord,
    /// Fetch time of its page.
    pub fetched_at: DateTime<Utc>,
    /// SHA-256 of its page body.
    pub page_sha256: String,
}

/// How stored keys met again are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revisit {
    /// A new crawl: stored keys are updated (upsert).
    Upsert,
    /// Resuming: stored keys are skipped.
    Skip,
}

/// Counts of one committed batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// Pages appended.
    pub pages: usize,
    /// Pages skipped as already stored with the same hash.
    pub pages_unchanged: usize,
    /// New pairs appended.
    pub pairs_new: usize,
    /// Stored pairs updated.
    pub pairs_updated: usize,
    /// Stored pairs skipped (resume).
    pub pairs_already_stored: usize,
}

/// Writes crawl batches to the catalog, keeping the key sets of what is stored.
pub struct Store {
    catalog: Catalog,
    page_keys: HashSet<(String, String)>,
    pair_keys: HashSet<(String, String)>,
    revisit: Revisit,
}

/// Why the crawl's tables could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The catalog failed.
    #[error(transparent)]
    Catalog(Box<CatalogError>),
    /// A key column is missing or not text.
    #[error("table {table}: key {message} (help: was it written by another tool?)")]
    KeyColumn {
        /// The table.
        table: String,
        /// What is wrong.
        message: String,
    },
}

impl From<CatalogError> for StoreError {
    fn from(e: CatalogError) -> StoreError {
        StoreError::Catalog(Box::new(e))
    }
}

/// The `(a, b)` key pairs of a table's latest version.
async fn key_set(
    catalog: &Catalog,
    table: &str,
    columns: [&str; 2],
) -> Result<HashSet<(String, String)>, StoreError> {
    let mut keys = HashSet::new();
    for batch in catalog.read(table, At::Latest).await? {
        let column = |name: &str| {
            let c = batch
                .column_by_name(name)
                .ok_or_else(|| StoreError::KeyColumn {
                    table: table.to_string(),
                    message: format!("no column `{name}`"),
                })?;
            arrow::compute::cast(c, &DataType::Utf8).map_err(|e| StoreError::KeyColumn {
                table: table.to_string(),
                message: format!("column `{name}` is not text: {e}"),
            })
        };
        let (a, b) = (column(columns[0])?, column(columns[1])?);
        let (a, b) = (a.as_string::<i32>(), b.as_string::<i32>());
        for i in 0..batch.num_rows() {
            keys.insert((a.value(i).to_string(), b.value(i).to_string()));
        }
    }
    Ok(keys)
}

impl Store {
    /// Creates the tables if missing (checking their schemas otherwise) and loads the key sets.
    pub async fn open(catalog: Catalog, revisit: Revisit) -> Result<Store, StoreError> {
        catalog
            .ensure_table(RAW_PAGES, PAGES_SCHEMA.clone())
            .await?;
        catalog
            .ensure_table(RAW_PAIRS, PAIRS_SCHEMA.clone())
            .await?;
        let page_keys = key_set(&catalog, RAW_PAGES, ["url", "sha256"]).await?;
        let pair_keys = key_set(&catalog, RAW_PAIRS, PAIR_KEYS).await?;
        Ok(Store {
            catalog,
            page_keys,
            pair_keys,
            revisit,
        })
    }

    /// Number of pairs stored.
    pub fn stored_pairs(&self) -> usize {
        self.pair_keys.len()
    }

    /// Writes one batch: one commit to `raw_pages`, one append and (on re-crawls) one upsert to
    /// `raw_pairs`. Only what is new is written; an empty part makes no commit.
    pub async fn commit(
        &mut self,
        pages: Vec<PageRow>,
        pairs: Vec<PairRow>,
        params: serde_json::Value,
    ) -> Result<Committed, CatalogError> {
        let mut counts = Committed::default();
        let new_pages: Vec<PageRow> = pages
            .into_iter()
            .filter(|p| {
                let fresh = !self.page_keys.contains(&(p.url.clone(), p.sha256.clone()));
                counts.pages_unchanged += usize::from(!fresh);
                fresh
            })
            .collect();
        let (mut fresh, mut stored) = (Vec::new(), Vec::new());
        let mut batch_keys = HashSet::new();
        for row in pairs {
            let key = (row.record.source.clone(), row.record.item_id.clone());
            if !batch_keys.insert(key.clone()) {
                continue; // the crawler already dedups keys within a run
            }
            if !self.pair_keys.contains(&key) {
                fresh.push(row);
            } else if self.revisit == Revisit::Upsert {
                stored.push(row);
            } else {
                counts.pairs_already_stored += 1;
            }
        }
        let commit = || Commit::new("crawl").with_params(params.clone());
        if !new_pages.is_empty() {
            self.catalog
                .append(RAW_PAGES, vec![pages_batch(&new_pages)], commit())
                .await?;
            counts.pages = new_pages.len();
            self.page_keys
                .extend(new_pages.into_iter().map(|p| (p.url, p.sha256)));
        }
        if !fresh.is_empty() {
            self.catalog
                .append(RAW_PAIRS, vec![pairs_batch(&fresh)], commit())
                .await?;
            counts.pairs_new = fresh.len();
            self.pair_keys.extend(
                fresh
                    .iter()
                    .map(|r| (r.record.source.clone(), r.record.item_id.clone())),
            );
        }
        if !stored.is_empty() {
            self.catalog
                .upsert(RAW_PAIRS, vec![pairs_batch(&stored)], &PAIR_KEYS, commit())
                .await?;
            counts.pairs_updated = stored.len();
        }
        Ok(counts)
    }
}

fn pages_batch(rows: &[PageRow]) -> RecordBatch {
    let mut url = StringBuilder::new();
    let mut source = StringBuilder::new();
    let mut status = Int32Builder::new();
    let mut fetched = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut ctype = StringBuilder::new();
    let mut sha = StringBuilder::new();
    let mut len = Int64Builder::new();
    let mut body = BinaryBuilder::new();
    let mut items = Int64Builder::new();
    let mut error = StringBuilder::new();
    for r in rows {
        url.append_value(&r.url);
        source.append_value(&r.source);
        status.append_value(i32::from(r.status));
        fetched.append_value(r.fetched_at.timestamp_micros());
        ctype.append_option(r.content_type.as_deref());
        sha.append_value(&r.sha256);
        len.append_value(r.body_len as i64);
        body.append_value(&r.body_zstd);
        items.append_value(r.items as i64);
        error.append_option(r.error.as_deref());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(url.finish()),
        Arc::new(source.finish()),
        Arc::new(status.finish()),
        Arc::new(fetched.finish()),
        Arc::new(ctype.finish()),
        Arc::new(sha.finish()),
        Arc::new(len.finish()),
        Arc::new(body.finish()),
        Arc::new(items.finish()),
        Arc::new(error.finish()),
    ];
    RecordBatch::try_new(PAGES_SCHEMA.clone(), columns).expect("columns match PAGES_SCHEMA")
}

fn pairs_batch(rows: &[PairRow]) -> RecordBatch {
    let mut s = [(); 8].map(|_| StringBuilder::new());
    let [source, item_id, url, prompt, negative, model, sampler, nsfw] = &mut s;
    let (mut steps, mut seed, mut likes) = (
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
    );
    let mut cfg = Float64Builder::new();
    let (mut width, mut height) = (Int32Builder::new(), Int32Builder::new());
    let mut created = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut fetched = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut page_sha = StringBuilder::new();
    for row in rows {
        let r = &row.record;
        source.append_value(&r.source);
        item_id.append_value(&r.item_id);
        url.append_value(&r.url);
        prompt.append_value(&r.prompt);
        negative.append_option(r.negative_prompt.as_deref());
        model.append_option(r.model.as_deref());
        sampler.append_option(r.sampler.as_deref());
        steps.append_option(r.steps);
        cfg.append_option(r.cfg_scale);
        seed.append_option(r.seed);
        width.append_option(r.width);
        height.append_option(r.height);
        likes.append_option(r.likes);
        created.append_option(r.created_at.map(|t| t.timestamp_micros()));
        nsfw.append_option(r.nsfw_level.as_deref());
        fetched.append_value(row.fetched_at.timestamp_micros());
        page_sha.append_value(&row.page_sha256);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(source.finish()),
        Arc::new(item_id.finish()),
        Arc::new(url.finish()),
        Arc::new(prompt.finish()),
        Arc::new(negative.finish()),
        Arc::new(model.finish()),
        Arc::new(sampler.finish()),
        Arc::new(steps.finish()),
        Arc::new(cfg.finish()),
        Arc::new(seed.finish()),
        Arc::new(width.finish()),
        Arc::new(height.finish()),
        Arc::new(likes.finish()),
        Arc::new(created.finish()),
        Arc::new(nsfw.finish()),
        Arc::new(fetched.finish()),
        Arc::new(page_sha.finish()),
    ];
    RecordBatch::try_new(PAIRS_SCHEMA.clone(), columns).expect("columns match PAIRS_SCHEMA")
}

/// Reads `raw_pairs` back as records (tests and tools compare crawls with it).
pub async fn read_pairs(catalog: &Catalog) -> Result<Vec<PairRecord>, CatalogError> {
    use arrow::array::Array;
    use arrow::datatypes::{Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
    let batches = catalog.read(RAW_PAIRS, At::Latest).await?;
    let mut out = Vec::new();
    for b in batches {
        let col = |name: &str| {
            let c = b.column_by_name(name).expect("raw_pairs column");
            arrow::compute::cast(
                c,
                &PAIRS_SCHEMA
                    .field_with_name(name)
                    .expect("field")
                    .data_type()
                    .clone(),
            )
            .expect("raw_pairs column casts to its schema type")
        };
        let text = |name: &str| {
            let a = col(name);
            let a = a.as_string::<i32>().clone();
            move |i: usize| (!a.is_null(i)).then(|| a.value(i).to_string())
        };
        let (source, item_id, url, prompt, negative, model, sampler, nsfw) = (
            text("source"),
            text("item_id"),
            text("url"),
            text("prompt"),
            text("negative_prompt"),
            text("model"),
            text("sampler"),
            text("nsfw_level"),
        );
        let int64 = |name: &str| col(name).as_primitive::<Int64Type>().clone();
        let int32 = |name: &str| col(name).as_primitive::<Int32Type>().clone();
        let (steps, seed, likes) = (int64("steps"), int64("seed"), int64("likes"));
        let (width, height) = (int32("width"), int32("height"));
        let cfg = col("cfg_scale").as_primitive::<Float64Type>().clone();
        let created = col("created_at")
            .as_primitive::<TimestampMicrosecondType>()
            .clone();
        fn opt<A: Array, T>(a: &A, i: usize, f: impl Fn() -> T) -> Option<T> {
            (!a.is_null(i)).then(f)
        }
        for i in 0..b.num_rows() {
            out.push(PairRecord {
                source: source(i).unwrap_or_default(),
                item_id: item_id(i).unwrap_or_default(),
                url: url(i).unwrap_or_default(),
                prompt: prompt(i).unwrap_or_default(),
                negative_prompt: negative(i),
                model: model(i),
                sampler: sampler(i),
                steps: opt(&steps, i, || steps.value(i)),
                cfg_scale: opt(&cfg, i, || cfg.value(i)),
                seed: opt(&seed, i, || seed.value(i)),
                width: opt(&width, i, || width.value(i)),
                height: opt(&height, i, || height.value(i)),
                likes: opt(&likes, i, || likes.value(i)),
                created_at: opt(&created, i, || {
                    DateTime::from_timestamp_micros(created.value(i))
                        .expect("stored timestamps are valid")
                }),
                nsfw_level: nsfw(i),
            });
        }
    }
    Ok(out)
}
