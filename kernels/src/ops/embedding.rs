//! Token embedding (`cu/embedding.cu`): HF T5 `shared` (no scaling), and its gradient into an
//! fp32 table accumulator. Ids are validated once, when uploaded as [`TokenIds`].

use crate::error::{DriverContext, Result, bad_input};
use crate::family::{Dir, Dtype, Family, kernel_name};
use crate::gpu::Gpu;
use crate::launch::{as_i32, expect_len, per_row};
use cudarc::driver::{CudaSlice, CudaView, CudaViewMut, PushKernelArg};
use half::bf16;

/// Token ids on the device, each checked to lie in `[0, vocab)` (targets may also be the
/// ignore index, see [`TokenIds::upload_targets`]).
#[derive(Debug)]
pub struct TokenIds {
    ids: CudaSlice<i32>,
    vocab: usize,
}

impl TokenIds {
    /// Checks and uploads input ids (N,).
    pub fn upload(gpu: &Gpu, ids: &[u32], vocab: usize) -> Result<TokenIds> {
        Self::upload_checked(gpu, ids, vocab, None)
    }

    /// Checks and uploads target ids (N,), where `ignore` marks positions without a loss.
    pub fn upload_targets(gpu: &Gpu, ids: &[i32], vocab: usize, ignore: i32) -> Result<TokenIds> {
        let ids: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
        Self::upload_checked(gpu, &ids, vocab, Some(i64::from(ignore)))
    }

    fn upload_checked<T: Copy + Into<i64>>(
        gpu: &Gpu,
        ids: &[T],
        vocab: usize,
        ignore: Option<i64>,
    ) -> Result<TokenIds> {
        const OP: &str = "TokenIds::upload";
        as_i32(OP, "vocab", vocab)?;
        let mut host = Vec::with_capacity(ids.len());
        for (pos, &id) in ids.iter().enumerate() {
            let id: i64 = id.into();
            if Some(id) != ignore && !(0..vocab as i64).contains(&id) {
                return Err(bad_input!(
                    OP,
                    "id {id} at position {pos} is outside the vocabulary [0, {vocab})"
                ));
            }
            host.push(id as i32);
        }
        let ids = gpu
            .stream()
            .clone_htod(&host)
            .while_(|| format!("uploading {} token ids", host.len()))?;
        Ok(TokenIds { ids, vocab })
    }

    /// The ids.
    pub fn view(&self) -> CudaView<'_, i32> {
        self.ids.as_view()
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no ids.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The vocabulary size the ids were checked against.
    pub fn vocab(&self) -> usize {
        self.vocab
    }
}

/// CPU reference forward: out (N, C) = `table[ids]` with table (V, C).
pub fn embedding_forward_cpu(ids: &[u32], table: &[f32], c: usize) -> Vec<f32> {
    ids.iter()
        .flat_map(|&id| {
            table[id as usize * c..(id as usize + 1) * c]
                .iter()
                .copied()
        })
        .collect()
}

/// CPU reference backward: dtable (V, C) += dout (N, C) scattered by ids.
pub fn embedding_backward_cpu(dtable: &mut [f32], ids: &[u32], dout: &[f32], c: usize) {
    for (n, &id) in ids.iter().enumerate() {
        let row = &mut dtable[id as usize * c..(id as usize + 1) * c];
        for (d, &g) in row.iter_mut().zip(&dout[n * c..(n + 1) * c]) {
            *d += g;
        }
    }
}

/// out (N, C) = table (V, C) rows at ids (N,).
pub fn embedding_forward(
    gpu: &Gpu,
    out: &mut CudaViewMut<'_, bf16>,
    ids: &TokenIds,
    table: &CudaView<'_, bf16>,
    c: usize,
) -> Result<()> {
    const OP: &str = "embedding_forward";
    let (n, v) = (ids.len(), ids.vocab());
    expect_len(OP, "table", table.len(), v * c)?;
    expect_len(OP, "out", out.len(), n * c)?;
    if n == 0 {
        return Ok(());
    }
    let name = kernel_name("embedding", Dir::Forward, 1, Dtype::Bf16);
    let f = gpu.function(Family::Embedding, &name)?;
    let (n32, c32, v32) = (
        as_i32(OP, "N", n)?,
        as_i32(OP, "C", c)?,
        as_i32(OP, "V", v)?,
    );
    let ids = ids.view();
    let mut launch = gpu.stream().launch_builder(&f);
    launch
        .arg(out)
        .arg(&ids)
        .arg(table)
        .arg(&n32)
        .arg(&c32)
        .arg(&v32);
    // SAFETY: arguments match `(bf16* out, const int* ids, const bf16* table, int N, int C,
    // int V)`; buffer lengths checked above.
    unsafe { launch.launch(per_row(n, 256, 0)) }.while_(|| format!("launching {name}"))?;
    Ok(())
}

/// dtable (V, C) fp32 += dout (N, C) scattered by ids (N,).
pub fn embedding_backward(
    gpu: &Gpu,
    dtable: &mut CudaViewMut<'_, f32>,
    ids: &TokenIds,
    dout: &CudaView<'_, bf16>,
    c: usize,
) -> Result<()> {
    const OP: &str = "embedding_backward";
    let (n, v) = (ids.len(), ids.vocab());
    expect_len(OP, "dtable", dtable.len(), v * c)?;
    expect_len(OP, "dout", dout.len(), n * c)?;
    if n == 0 {
        return Ok(());
    }
    let name = kernel_name("embedding", Dir::Backward, 1, Dtype::Bf16);
    let f = gpu.function(Family::Embedding, &name)?;
    let (n32, c32, v32) = (
        as_i32(OP, "N", n)?,
        as_i32(OP, "C", c)?,
        as_i32(OP, "V", v)?,
    );
    let ids = ids.view();
    let mut launch = gpu.stream().launch_builder(&f);
    launch
        .arg(dtable)
        .arg(&ids)
        .arg(dout)
        .arg(&n32)
        .arg(&c32)
        .arg(&v32);
    // SAFETY: arguments match `(float* dtable, const int* ids, const bf16* dout, int N, int C,
    // int V)`; buffer lengths checked above.
    unsafe { launch.launch(per_row(n, 256, 0)) }.while_(|| format!("launching {name}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn cpu_forward_and_backward_are_adjoint() {
        // <embed(table), dout> = <table, dtable> for the scatter-add gradient.
        let (v, c) = (7, 3);
        let ids = [3u32, 0, 3, 6];
        let table = random(1, v * c, -1.0, 1.0);
        let dout = random(2, ids.len() * c, -1.0, 1.0);
        let out = embedding_forward_cpu(&ids, &table, c);
        let mut dtable = vec![0.0; v * c];
        embedding_backward_cpu(&mut dtable, &ids, &dout, c);
        let lhs: f32 = out.iter().zip(&dout).map(|(a, b)| a * b).sum();
        let rhs: f32 = table.iter().zip(&dtable).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-5);
        assert_eq!(&out[3..6], &table[0..3]);
    }

    #[test]
    fn gpu_matches_cpu() {
        let Some(gpu) = gpu_or_skip("embedding::gpu_matches_cpu") else {
            return;
        };
        assert!(
            TokenIds::upload(&gpu, &[5], 5).is_err(),
            "id == vocab must be refused"
        );
        for (n, v, c) in [(1usize, 3usize, 1usize), (77, 100, 64), (4096, 32128, 512)] {
            let ids: Vec<u32> = random_ids(1, n, v as i32)
                .iter()
                .map(|&i| i as u32)
                .collect();
            let table = bf16_round(&random(2, v * c, -1.0, 1.0));
            let dout = bf16_round(&random(3, n * c, -1.0, 1.0));
            let d_ids = TokenIds::upload(&gpu, &ids, v).unwrap();
            let d_table = upload_bf16(&gpu, &table);
            let mut d_out = gpu.stream().alloc_zeros::<bf16>(n * c).unwrap();
            embedding_forward(
                &gpu,
                &mut d_out.as_view_mut(),
                &d_ids,
                &d_table.as_view(),
                c,
            )
            .unwrap();
            // A copy is exact.
            assert_eq!(
                download_bf16(&gpu, &d_out),
                embedding_forward_cpu(&ids, &table, c)
            );
            let d_dout = upload_bf16(&gpu, &dout);
            let mut d_dtable = gpu.stream().alloc_zeros::<f32>(v * c).unwrap();
            embedding_backward(
                &gpu,
                &mut d_dtable.as_view_mut(),
                &d_ids,
                &d_dout.as_view(),
                c,
            )
            .unwrap();
            let mut want = vec![0.0; v * c];
            embedding_backward_cpu(&mut want, &ids, &dout, c);
            // fp32 sums of a few terms in atomic (arbitrary) order.
            assert_close(
                "dtable",
                &download(&gpu, &d_dtable),
                &want,
                Tolerance {
                    atol: 1e-5,
                    rtol: 1e-5,
                },
            );
        }
    }
}
