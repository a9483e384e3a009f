//! Length-bucketed padded batches in a deterministic per-epoch order.
//!
//! Epoch `e`: permute all examples with a seed from `(seed, e)`, cut the permutation into
//! buckets of [`BUCKET_BATCHES`] batches, sort each bucket by length (less padding), cut it
//! into batches, then permute the batches (so lengths still vary from step to step).

use std::sync::Arc;

use super::{Example, splitmix64};
use crate::t5::model::{IGNORE_INDEX, Seq2SeqBatch};

/// Batches per length bucket: sorting within a bucket cuts padding, shuffling keeps variety.
const BUCKET_BATCHES: usize = 32;

/// A deterministic permutation of `0..n` (Fisher–Yates over splitmix64).
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut state = seed;
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (splitmix64(&mut state) % (i as u64 + 1)) as usize;
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
