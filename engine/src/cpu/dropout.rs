//! Inverted dropout with a counter-based mask: element `i` is kept when
//! `splitmix64(seed ⊕ i·φ) / 2⁶⁴ ≥ p`. A pure function of `(seed, i)` needs no stored mask,
//! reproduces on resume, and is what a CUDA kernel computes per thread too.

use rayon::prelude::*;

const CHUNK: usize = 1 << 14;

/// Whether element `i` survives dropout with probability `p` under `seed`.
pub fn dropout_keep(seed: u64, i: usize, p: f32) -> bool {
    let mut z = seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // 24 high bits: exact in f32.
    ((z >> 40) as f32) / (1u64 << 24) as f32 >= p
}

/// Zeroes dropped elements, scales kept ones by `1/(1-p)`.
pub(super) fn dropout_cpu(t: &mut [f32], p: f32, seed: u64) {
    if p == 0.0 {
        return;
    }
    let scale = 1.0 / (1.0 - p);
    t.par_chunks_mut(CHUNK).enumerate().for_each(|(c, xs)| {
        for (j, x) in xs.iter_mut().enumerate() {
            *x = if dropout_keep(seed, c * CHUNK + j, p) {
                *x * scale
            } else {
                0.0
            };
        }
    });
}
