//! Inverted dropout with the counter-based mask defined in `negopt_kernels::ops::dropout`
//! (four 16-bit draws per 64-bit hash, a pure function of `(seed, i)`), which its CUDA kernel
//! computes too. This is the vectorised CPU loop over that definition.

use multiversion::multiversion;
use negopt_kernels::ops::dropout::{GROUP, group_draws, keep_threshold};
use rayon::prelude::*;

const CHUNK: usize = 1 << 14;
/// Elements whose draws are made together.
const BLOCK: usize = 64;

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
            // Draws for a block first, then a branch-free select the compiler vectorises.
            // CHUNK and BLOCK are multiples of GROUP, so groups never straddle them.
            for (j, block) in xs.chunks_mut(BLOCK).enumerate() {
                let first_group = (c * CHUNK + j * BLOCK) / GROUP;
                let mut draws = [0u16; BLOCK];
                for (g, lanes) in draws.chunks_exact_mut(GROUP).enumerate() {
                    lanes.copy_from_slice(&group_draws(seed, first_group + g));
                }
                for (x, &d) in block.iter_mut().zip(&draws) {
                    *x = if u32::from(d) >= threshold {
                        *x * scale
                    } else {
                        0.0
                    };
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use negopt_kernels::ops::dropout::dropout_forward_cpu;

    #[test]
    fn matches_the_kernels_reference_bit_for_bit() {
        for n in [1, 5, CHUNK * 2 + 7] {
            let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let (mut got, mut want) = (x.clone(), x);
            dropout_cpu(&mut got, 0.3, 42);
            dropout_forward_cpu(&mut want, 0.3, 42);
            assert_eq!(got, want, "n {n}");
        }
    }
}
