//! Embedding lookup (row gather) and its backward (row scatter-add). The forward also serves
//! relative-position bias lookups and beam reordering of KV caches.

use rayon::prelude::*;

/// `out[i, :] = table[ids[i], :]`, rows of width `c`; ids are range-checked by the caller.
pub(super) fn embedding_forward_cpu(out: &mut [f32], table: &[f32], ids: &[u32], c: usize) {
    out.par_chunks_mut(c.max(1))
        .zip(ids.par_iter())
        .for_each(|(row, &id)| {
            let id = id as usize;
            row.copy_from_slice(&table[id * c..(id + 1) * c]);
        });
}

/// `dtable[ids[i], :] += dout[i, :]`, in id order (repeated ids sum deterministically).
pub(super) fn embedding_backward_cpu(dtable: &mut [f32], dout: &[f32], ids: &[u32], c: usize) {
    for (i, &id) in ids.iter().enumerate() {
        let id = id as usize;
        let src = &dout[i * c..(i + 1) * c];
        dtable[id * c..(id + 1) * c]
            .iter_mut()
            .zip(src)
            .for_each(|(d, s)| *d += s);
    }
}
