//! Training data: prompt → negative-prompt pairs of one split, streamed from a catalog table
//! version (or any [`PairSource`]) as narrow Arrow batches, tokenised on rayon threads batch by
//! batch, cut into length-bucketed padded batches in a deterministic per-epoch order.
//!
//! ```text
//! PairSource::stream_split(split)   (scan thread: DataFusion filter + projection, read-ahead 4)
//!   ─► Arrow batch (prompt, negative_prompt) ─► tokenise its rows (rayon) ─► compact examples
//!   ─► canonical order ─► Batcher: epoch e: shuffle(seed, e) ─► buckets of 32 batches sorted
//!   by length ─► padded batches in shuffled order ─► Position { epoch, batch }
//! ```
//!
//! What is held in memory: at most a few Arrow batches of the two text columns of one split
//! (never the whole table, never its other columns), plus the split's token ids ([`Example`]s):
//! a global shuffle needs every example, and ids are far smaller than the table.
//!
//! A multi-file table's partitions are scanned concurrently, so batches may arrive in any
//! order; [`examples`] therefore sorts the examples into a canonical order (by a hash of their
//! ids), and the shuffle, hence the run, depends only on the split's content and the seed. The
//! [`Position`] is saved in checkpoints, so a resumed run sees the same next batch.

mod batcher;
mod source;

use arrow::array::{Array, AsArray, StringArray};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use batcher::{Batcher, permutation};
pub use source::{
    BatchStream, CatalogSource, MemorySource, PairSource, READ_AHEAD, TEXT_COLUMNS, block_on,
};

use crate::error::{EngineError, Result};
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

/// One prompt and its ground-truth negative prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The positive prompt (model input).
    pub prompt: String,
    /// The negative prompt (target).
    pub negative: String,
}

/// A tokenised pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Example {
    /// Source ids, ending in `</s>`.
    pub src: Vec<u32>,
    /// Target ids, ending in `</s>`.
    pub tgt: Vec<u32>,
}

/// Where a run is in its data: the next batch of an epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Epoch, from 0.
    pub epoch: u64,
    /// Index of the next batch within the epoch's order.
    pub batch: usize,
}

/// One step of splitmix64: the engine's only data RNG, so orders never depend on a crate.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The prompt and negative of row `i`, unless either is null or blank (such rows are skipped
/// and counted).
fn usable<'a>(p: &'a StringArray, n: &'a StringArray, i: usize) -> Option<(&'a str, &'a str)> {
    if p.is_null(i) || n.is_null(i) {
        return None;
    }
    let (p, n) = (p.value(i), n.value(i));
    (!p.trim().is_empty() && !n.trim().is_empty()).then_some((p, n))
}

fn empty_split(desc: &str, split: Split) -> EngineError {
    EngineError::input(
        format!("split `{}` of {desc}", split.as_str()),
        "has no usable rows\nhelp: check the table version and that curate assigned splits",
    )
}

fn log_skipped(desc: &str, split: Split, skipped: usize) {
    if skipped > 0 {
        tracing::warn!(source = %desc, split = split.as_str(), skipped, "rows without prompt or negative prompt skipped");
    }
}

/// The usable pairs of one split, one at a time, as owned strings: only the current Arrow
/// batch is held. A source error is yielded once, then the iterator ends.
#[derive(Debug)]
pub struct Pairs {
    stream: BatchStream,
    desc: String,
    split: Split,
    /// The current batch's (prompt, negative_prompt) columns and the next row.
    current: Option<(StringArray, StringArray, usize)>,
    skipped: usize,
    finished: bool,
}

impl Pairs {
    fn next_batch(&mut self) -> Result<bool> {
        match self.stream.next() {
            None => Ok(false),
            Some(batch) => {
                let (p, n) = source::text_columns(&batch?, &self.desc)?;
                self.current = Some((
                    p.as_string::<i32>().clone(),
                    n.as_string::<i32>().clone(),
                    0,
                ));
                Ok(true)
            }
        }
    }
}

impl Iterator for Pairs {
    type Item = Result<Pair>;

    fn next(&mut self) -> Option<Result<Pair>> {
        while !self.finished {
            if let Some((p, n, row)) = &mut self.current
                && *row < p.len()
            {
                let i = *row;
                *row += 1;
                match usable(p, n, i) {
                    Some((p, n)) => {
                        return Some(Ok(Pair {
                            prompt: p.to_string(),
                            negative: n.to_string(),
                        }));
                    }
                    None => self.skipped += 1,
                }
                continue;
            }
            match self.next_batch() {
                Ok(true) => {}
                Ok(false) => {
                    self.finished = true;
                    log_skipped(&self.desc, self.split, self.skipped);
                }
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

/// Streams the usable pairs of `split` (see [`Pairs`]).
pub fn pairs(source: &dyn PairSource, split: Split) -> Result<Pairs> {
    Ok(Pairs {
        stream: source.stream_split(split)?,
        desc: source.describe(),
        split,
        current: None,
        skipped: 0,
        finished: false,
    })
}

/// All usable pairs of `split`, as strings (for evaluation, whose test split is small). An
/// empty split is an error naming the source.
pub fn read_pairs(source: &dyn PairSource, split: Split) -> Result<Vec<Pair>> {
    let all = pairs(source, split)?.collect::<Result<Vec<Pair>>>()?;
    if all.is_empty() {
        return Err(empty_split(&source.describe(), split));
    }
    Ok(all)
}

fn encode(
    tok: &Tokenizer,
    prompt: &str,
    negative: &str,
    max_source: usize,
    max_target: usize,
) -> Result<Example> {
    Ok(Example {
        src: tok.encode(prompt, max_source)?,
        tgt: tok.encode(negative, max_target)?,
    })
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
        .map(|p| encode(tok, &p.prompt, &p.negative, max_source, max_target))
        .collect()
}

/// A hash of an example's ids, the primary key of the canonical order.
fn content_key(e: &Example) -> u64 {
    let mut state = e.src.len() as u64;
    for &id in e.src.iter().chain([u32::MAX].iter()).chain(&e.tgt) {
        state ^= u64::from(id);
        splitmix64(&mut state);
    }
    splitmix64(&mut state)
}

/// The examples of `split`, streamed from `source` batch by batch: each Arrow batch's rows are
/// tokenised in parallel (rayon) while the scan thread decodes the next, and only the ids are
/// kept. Rows without prompt or negative are skipped and counted in the log; an empty split
/// is an error naming the source. The result is in canonical order (see the module docs).
pub fn examples(
    source: &dyn PairSource,
    split: Split,
    tok: &Tokenizer,
    max_source: usize,
    max_target: usize,
) -> Result<Vec<Example>> {
    let desc = source.describe();
    let (mut keyed, mut skipped) = (Vec::new(), 0usize);
    for batch in source.stream_split(split)? {
        let batch = batch?;
        let (p, n) = source::text_columns(&batch, &desc)?;
        let (p, n) = (p.as_string::<i32>(), n.as_string::<i32>());
        let encoded = (0..batch.num_rows())
            .into_par_iter()
            .map(|i| {
                usable(p, n, i)
                    .map(|(p, n)| encode(tok, p, n, max_source, max_target))
                    .transpose()
            })
            .collect::<Result<Vec<Option<Example>>>>()?;
        skipped += encoded.iter().filter(|e| e.is_none()).count();
        keyed.extend(encoded.into_iter().flatten().map(|e| (content_key(&e), e)));
    }
    log_skipped(&desc, split, skipped);
    if keyed.is_empty() {
        return Err(empty_split(&desc, split));
    }
    keyed.sort_unstable();
    Ok(keyed.into_iter().map(|(_, e)| e).collect())
}
