//! Training data: prompt → negative-prompt pairs of one split, from a catalog table version (or
//! any [`PairSource`]), tokenised on rayon threads, cut into length-bucketed padded batches in
//! a deterministic per-epoch order.
//!
//! ```text
//! PairSource::read_split(split) ─► Arrow batches ─► pairs (prompt, negative_prompt)
//!   ─► tokenise (rayon) ─► examples ─► epoch e: shuffle(seed, e) ─► buckets of 32 batches
//!   sorted by length ─► padded batches in shuffled order ─► Position { epoch, batch }
//! ```
//! The [`Position`] is saved in checkpoints, so a resumed run sees the same next batch.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use negopt_catalog::{At, Catalog};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::t5::model::{IGNORE_INDEX, Seq2SeqBatch};
use crate::tokenizer::Tokenizer;

/// A split of the Negative Prompts DB (column `split`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training rows.
    Train,
    /// Validation rows (eval during training).
    Val,
    /// Held-out test rows (final eval).
    Test,
}

impl Split {
    /// The value in the `split` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

/// Where pairs come from: a catalog table version, or batches built in memory by tests.
pub trait PairSource {
    /// Human-readable name for errors and logs (e.g. `negative_prompts_db v3`).
    fn describe(&self) -> String;
    /// The Arrow batches holding `split`'s rows (other rows may be included; they are
    /// filtered by the `split` column).
    fn read_split(&self, split: Split) -> Result<Vec<RecordBatch>>;
}

/// A table of a catalog at a version.
#[derive(Debug)]
pub struct CatalogSource {
    catalog: Catalog,
    table: String,
    version: u64,
}

/// Runs a catalog future on a private current-thread runtime: the engine is synchronous and
/// only touches the catalog at start and at metric flushes.
pub fn block_on<F: std::future::Future>(f: F) -> Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| crate::internal_err!("tokio runtime: {e}"))?;
    Ok(rt.block_on(f))
}

impl CatalogSource {
    /// `table` of `catalog` at `version` (latest when `None`).
    pub fn open(catalog: Catalog, table: &str, version: Option<u64>) -> Result<CatalogSource> {
        let version = match version {
            Some(v) => v,
            None => block_on(catalog.latest_version(table))?
                .map_err(|e| EngineError::Catalog(e.to_string()))?,
        };
        Ok(CatalogSource {
            catalog,
            table: table.to_string(),
            version,
        })
    }

    /// The pinned version (recorded in run metadata for lineage).
    pub fn version(&self) -> u64 {
        self.version
    }
}

impl PairSource for CatalogSource {
    fn describe(&self) -> String {
        format!("{} v{}", self.table, self.version)
    }

    fn read_split(&self, _split: Split) -> Result<Vec<RecordBatch>> {
        block_on(self.catalog.read(&self.table, At::Version(self.version)))?
            .map_err(|e| EngineError::Catalog(e.to_string()))
    }
}

/// Arrow batches held in memory.
#[derive(Debug, Clone)]
pub struct MemorySource(pub Vec<RecordBatch>);

impl PairSource for MemorySource {
    fn describe(&self) -> String {
        "in-memory batches".into()
    }
    fn read_split(&self, _split: Split) -> Result<Vec<RecordBatch>> {
        Ok(self.0.clone())
    }
}

/// One prompt and its ground-truth negative prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The positive prompt (model input).
    pub prompt: String,
    /// The negative prompt (target).
    pub negative: String,
}

fn string_column(batch: &RecordBatch, name: &str, source: &str) -> Result<Arc<dyn Array>> {
    let col = batch.column_by_name(name).ok_or_else(|| {
        EngineError::input(source, format!("has no `{name}` column\nhelp: train on negative_prompts_db, which has prompt, negative_prompt and split"))
    })?;
    cast(col, &DataType::Utf8)
        .map_err(|e| EngineError::input(source, format!("column `{name}` is not text: {e}")))
}

/// The pairs of `split`; rows without a negative prompt are skipped and counted in the log.
/// An empty split is an error naming the source.
pub fn read_pairs(source: &dyn PairSource, split: Split) -> Result<Vec<Pair>> {
    let desc = source.describe();
    let mut pairs = Vec::new();
    let mut skipped = 0usize;
    for batch in source.read_split(split)? {
        let (p, n, s) = (
            string_column(&batch, "prompt", &desc)?,
            string_column(&batch, "negative_prompt", &desc)?,
            string_column(&batch, "split", &desc)?,
        );
        let (p, n, s) = (
            p.as_string::<i32>(),
            n.as_string::<i32>(),
            s.as_string::<i32>(),
        );
        for i in 0..batch.num_rows() {
            if s.is_null(i) || s.value(i) != split.as_str() {
                continue;
            }
            if p.is_null(i)
                || n.is_null(i)
                || n.value(i).trim().is_empty()
                || p.value(i).trim().is_empty()
            {
                skipped += 1;
                continue;
            }
            pairs.push(Pair {
                prompt: p.value(i).to_string(),
                negative: n.value(i).to_string(),
            });
        }
    }
    if skipped > 0 {
        tracing::warn!(source = %desc, split = split.as_str(), skipped, "rows without prompt or negative prompt skipped");
    }
    if pairs.is_empty() {
        return Err(EngineError::input(
            format!("split `{}` of {desc}", split.as_str()),
            "has no usable rows\nhelp: check the table version and that curate assigned splits",
        ));
    }
    Ok(pairs)
}

/// A tokenised pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// Source ids, ending in `</s>`.
    pub src: Vec<u32>,
    /// Target ids, ending in `</s>`.
    pub tgt: Vec<u32>,
}

/// Tokenises pairs in parallel, truncating to `max_source` / `max_target` ids.
pub fn tokenize(
    tok: &Tokenizer,
    pairs: &[Pair],
    max_source: usize,
    max_target: usize,
) -> Result<Vec<Example>> {
    pairs
        .par_iter()
        .map(|p| {
            Ok(Example {
                src: tok.encode(&p.prompt, max_source)?,
                tgt: tok.encode(&p.negative, max_target)?,
            })
        })
        .collect()
}

/// Where a run is in its data: the next batch of an epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Epoch, from 0.
    pub epoch: u64,
    /// Index of the next batch within the epoch's order.
    pub batch: usize,
}

/// Batches per length bucket: sorting within a bucket cuts padding, shuffling keeps variety.
const BUCKET_BATCHES: usize = 32;

/// A deterministic permutation of `0..n` (Fisher–Yates over splitmix64).
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        p.swap(i, j);
    }
    p
}

/// Cuts examples into padded batches.
#[derive(Debug, Clone)]
pub struct Batcher {
    examples: Arc<Vec<Example>>,
    batch_size: usize,
    seed: u64,
    pad: u32,
    decoder_start: u32,
}

impl Batcher {
    /// A batcher over `examples` (at least one).
    pub fn new(
        examples: Vec<Example>,
        batch_size: usize,
        seed: u64,
        pad: u32,
        decoder_start: u32,
    ) -> Batcher {
        Batcher {
            examples: Arc::new(examples),
            batch_size: batch_size.max(1),
            seed,
            pad,
            decoder_start,
        }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    /// Whether there is no example.
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// The example indices of every batch of `epoch`, in training order.
    pub fn epoch_order(&self, epoch: u64) -> Vec<Vec<usize>> {
        let seed = self.seed ^ epoch.wrapping_mul(0xA076_1D64_78BD_642F);
        let perm = permutation(self.examples.len(), seed);
        let mut batches = Vec::new();
        for bucket in perm.chunks(self.batch_size * BUCKET_BATCHES) {
            let mut bucket = bucket.to_vec();
            bucket.sort_by_key(|&i| (self.examples[i].src.len(), self.examples[i].tgt.len()));
            batches.extend(bucket.chunks(self.batch_size).map(<[usize]>::to_vec));
        }
        let order = permutation(batches.len(), seed.rotate_left(32));
        order.into_iter().map(|i| batches[i].clone()).collect()
    }

    /// Batches in file order, for evaluation.
    pub fn sequential(&self) -> Vec<Vec<usize>> {
        (0..self.examples.len())
            .collect::<Vec<_>>()
            .chunks(self.batch_size)
            .map(<[usize]>::to_vec)
            .collect()
    }

    /// The example at `i`.
    pub fn example(&self, i: usize) -> &Example {
        &self.examples[i]
    }

    /// A padded batch of the examples at `idx`.
    pub fn batch(&self, idx: &[usize]) -> Seq2SeqBatch {
        let s = idx
            .iter()
            .map(|&i| self.examples[i].src.len())
            .max()
            .unwrap_or(1);
        let t = idx
            .iter()
            .map(|&i| self.examples[i].tgt.len())
            .max()
            .unwrap_or(1);
        let mut input_ids = Vec::with_capacity(idx.len() * s);
        let mut attention_mask = Vec::with_capacity(idx.len() * s);
        let mut labels = Vec::with_capacity(idx.len() * t);
        for &i in idx {
            let e = &self.examples[i];
            input_ids.extend(
                e.src
                    .iter()
                    .copied()
                    .chain(std::iter::repeat_n(self.pad, s - e.src.len())),
            );
            attention_mask.extend((0..s).map(|j| if j < e.src.len() { 1.0 } else { 0.0 }));
            labels.extend(
                e.tgt
                    .iter()
                    .map(|&x| x as i32)
                    .chain(std::iter::repeat_n(IGNORE_INDEX, t - e.tgt.len())),
            );
        }
        let decoder_input_ids = Seq2SeqBatch::shift_right(&labels, t, self.decoder_start, self.pad);
        Seq2SeqBatch {
            b: idx.len(),
            s,
            t,
            input_ids,
            attention_mask,
            decoder_input_ids,
            labels,
        }
    }
}
