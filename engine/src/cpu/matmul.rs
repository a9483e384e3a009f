//! Batched strided matrix product on the CPU through the `gemm` crate.
//!
//! One product (`batch = [1, 1]`) uses gemm's own rayon parallelism; many products (batch ×
//! heads) run one per rayon task with gemm single-threaded, which keeps every core busy on
//! small attention matrices. gemm splits work by output blocks, never along `k`, so the
//! result does not depend on the thread count.

use rayon::prelude::*;

use crate::backend::{Accumulate, GemmShape, MatView};

/// Raw pointers handed to rayon tasks; see the SAFETY notes at their use.
#[derive(Clone, Copy)]
struct Ptrs {
    c: *mut f32,
    a: *const f32,
    b: *const f32,
}

// SAFETY: the pointers come from slices that outlive the parallel loop, and each task writes
// only its own batch item of C (non-overlapping by the op's contract); A and B are read-only.
unsafe impl Send for Ptrs {}
// SAFETY: as above: shared reads of A and B, disjoint writes of C.
unsafe impl Sync for Ptrs {}

impl Ptrs {
    /// Methods, not field reads, so closures capture the whole (Send + Sync) struct.
    fn get(&self) -> (*mut f32, *const f32, *const f32) {
        (self.c, self.a, self.b)
    }
}

/// `C[b] (+)= A[b]·B[b]` for every batch item; views are bounds-checked by the caller.
#[allow(clippy::too_many_arguments)]
pub(super) fn matmul_cpu(
    c: &mut [f32],
    cv: MatView,
    a: &[f32],
    av: MatView,
    b: &[f32],
    bv: MatView,
    shape: GemmShape,
    acc: Accumulate,
) {
    let GemmShape { batch, m, n, k } = shape;
    let items = batch[0] * batch[1];
    if items == 0 || m == 0 || n == 0 {
        return;
    }
    let ptrs = Ptrs {
        c: c.as_mut_ptr(),
        a: a.as_ptr(),
        b: b.as_ptr(),
    };
    let threads = rayon::current_num_threads();
    let run = |item: usize, parallelism: gemm::Parallelism| {
        let (b0, b1) = (item / batch[1], item % batch[1]);
        let (pc, pa, pb) = ptrs.get();
        let at = |v: &MatView| v.offset + b0 * v.batch_stride[0] + b1 * v.batch_stride[1];
        // SAFETY: the caller checked every view's extent against its slice, so all offsets are
        // in bounds; batch items of C are disjoint (op contract), so concurrent tasks never
        // write the same element; A and B are only read.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                pc.add(at(&cv)),
                cv.col_stride as isize,
                cv.row_stride as isize,
                acc == Accumulate::Add,
                pa.add(at(&av)),
                av.col_stride as isize,
                av.row_stride as isize,
                pb.add(at(&bv)),
                bv.col_stride as isize,
                bv.row_stride as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    };
    if items >= threads && items > 1 {
        (0..items)
            .into_par_iter()
            .for_each(|item| run(item, gemm::Parallelism::None));
    } else {
        // Small products are faster single-threaded than with thread hand-offs.
        let parallelism = if m * n * k >= 64 * 64 * 64 && threads > 1 {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        for item in 0..items {
            run(item, parallelism);
        }
    }
}
