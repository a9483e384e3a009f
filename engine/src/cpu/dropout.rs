//! Inverted dropout with a counter-based mask. Elements go in groups of four; group `g` draws
//! 64 bits `splitmix64(seed ⊕ g·φ)` and element `4g + j` is kept when bits `16j..16j+16`, as a
//! fraction of 2¹⁶, are `≥ p`. A pure function of `(seed, i)` needs no stored mask, reproduces
//! on resume, and is what a CUDA kernel computes per thread too; one hash per four elements
//! keeps it cheap.

use multiversion::multiversion;
use rayon::prelude::*;

const CHUNK: usize = 1 << 14;
/// Elements per 64-bit hash.
const GROUP: usize = 4;
/// Elements whose draws are made together.
const BLOCK: usize = 64;

/// The 64 random bits of element group `g` under `seed`.
fn group_bits(seed: u64, g: usize) -> u64 {
    let mut z = seed ^ (g as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The smallest 16-bit draw that survives dropout `p`: `draw / 2¹⁶ ≥ p` ⟺ `draw ≥ ⌈2¹⁶·p⌉`.
fn keep_threshold(p: f32) -> u32 {
    (p * 65536.0).ceil() as u32
}

/// Zeroes dropped elements, scales kept ones by `1/(1-p)`.
#[multiversion(targets("x86_64+avx+avx2+fma"))]
pub(super) fn dropout_cpu(t: &mut [f32], p: f32, seed: u64) {
    if p == 0.0 {
        return;
    }
    let scale = 1.0 / (1.0 - p);
    let threshold = keep_threshold(p);
    t.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(move |(c, xs)| {
            {
                // Draws for a block first, then a branch-free select the compiler vectorises.
                // CHUNK and BLOCK are multiples of GROUP, so groups never straddle them.
                for (j, block) in xs.chunks_mut(BLOCK).enumerate() {
                    let first_group = (c * CHUNK + j * BLOCK) / GROUP;
                    let mut draws = [0u16; BLOCK];
                    for (g, lanes) in draws.chunks_exact_mut(GROUP).enumerate() {
                        let bits = group_bits(seed, first_group + g);
                        for (lane, d) in lanes.iter_mut().enumerate() {
                            *d = (bits >> (16 * lane)) as u16;
                        }
                    }
                    for (x, &d) in block.iter_mut().zip(&draws) {
                        *x = if u32::from(d) >= threshold {
                            *x * scale
                        } else {
                            0.0
                        };
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-element definition: whether element `i` survives dropout `p` under `seed`.
    fn dropout_keep(seed: u64, i: usize, p: f32) -> bool {
        let draw = (group_bits(seed, i / GROUP) >> (16 * (i % GROUP))) & 0xFFFF;
        draw as u32 >= keep_threshold(p)
    }

    #[test]
    fn the_grouped_loop_applies_dropout_keep_to_every_element() {
        let n = CHUNK * 2 + 7;
        let mut t = vec![1.0f32; n];
        dropout_cpu(&mut t, 0.3, 42);
        for (i, &x) in t.iter().enumerate() {
            assert_eq!(x != 0.0, dropout_keep(42, i, 0.3), "element {i}");
        }
        let kept = t.iter().filter(|&&x| x != 0.0).count() as f64 / n as f64;
        assert!((kept - 0.7).abs() < 0.01, "kept share {kept}");
    }
}
