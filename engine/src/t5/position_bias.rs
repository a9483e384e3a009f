//! T5 relative-position buckets (transformers `T5Attention._relative_position_bucket`):
//! exact buckets for small distances, logarithmic ones up to `max_distance`, half the buckets
//! per direction when bidirectional (encoder), only the past when causal (decoder).
//! The bias itself is an embedding lookup of these bucket ids in the `(buckets, NH)` table,
//! giving `(Tq·Tk, NH)` as the attention softmax reads it.

use crate::backend::Masking;

/// The bucket of `relative_position = key − query`.
pub fn relative_position_bucket(
    relative_position: i64,
    masking: Masking,
    num_buckets: usize,
    max_distance: usize,
) -> u32 {
    let mut num_buckets = num_buckets as i64;
    let mut bucket = 0i64;
    let n = match masking {
        Masking::Bidirectional => {
            num_buckets /= 2;
            if relative_position > 0 {
                bucket += num_buckets;
            }
            relative_position.abs()
        }
        Masking::Causal => (-relative_position).max(0),
    };
    let max_exact = num_buckets / 2;
    bucket += if n < max_exact {
        n
    } else {
        // As PyTorch computes it: f32 log of the ratio over a Python-float (f64) log, truncated.
        let ratio = (n as f32 / max_exact as f32).ln()
            / ((max_distance as f64 / max_exact as f64).ln() as f32);
        let large = max_exact + (ratio * (num_buckets - max_exact) as f32) as i64;
        large.min(num_buckets - 1)
    };
    bucket as u32
}

/// Bucket ids for queries at positions `q_offset..q_offset+tq` against keys `0..tk`, row-major
/// `(q, k)`.
pub fn bucket_ids(
    tq: usize,
    tk: usize,
    q_offset: usize,
    masking: Masking,
    num_buckets: usize,
    max_distance: usize,
) -> Vec<u32> {
    let mut ids = Vec::with_capacity(tq * tk);
    for q in 0..tq {
        for k in 0..tk {
            let rel = k as i64 - (q + q_offset) as i64;
            ids.push(relative_position_bucket(
                rel,
                masking,
                num_buckets,
                max_distance,
            ));
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_match_transformers() {
        // Values printed by transformers 5.24 `T5Attention._relative_position_bucket` for
        // relative positions -200, -20, -9, -3, 0, 3, 9, 20, 200 (32 buckets, max distance 128).
        let rel = [-200, -20, -9, -3, 0, 3, 9, 20, 200];
        let bidi: Vec<u32> = rel
            .iter()
            .map(|&r| relative_position_bucket(r, Masking::Bidirectional, 32, 128))
            .collect();
        assert_eq!(bidi, vec![15, 10, 8, 3, 0, 19, 24, 26, 31]);
        let causal: Vec<u32> = rel
            .iter()
            .map(|&r| relative_position_bucket(r, Masking::Causal, 32, 128))
            .collect();
        assert_eq!(causal, vec![31, 17, 9, 3, 0, 0, 0, 0, 0]);
    }
}
