//! Small pieces every launcher shares: argument checks, grid sizing, and the NULL pointer
//! that optional kernel arguments receive.

use crate::error::{Result, bad_input};
use crate::gpu::Gpu;
use cudarc::driver::LaunchConfig;

/// A device NULL, pushed for optional pointer arguments that are absent.
pub(crate) const NULL: u64 = 0;

/// Errors unless a buffer holds exactly `want` elements.
pub(crate) fn expect_len(op: &'static str, arg: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(bad_input!(
            op,
            "`{arg}` holds {got} elements, the shape needs {want}"
        ))
    }
}

/// A size as the kernels' `int`.
pub(crate) fn as_i32(op: &'static str, what: &str, v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| bad_input!(op, "{what} = {v} exceeds the kernel's 32-bit range"))
}

/// A grid-stride launch over `n` elements: enough blocks to fill the device a few times over,
/// and no more (the loop covers the rest).
pub(crate) fn grid_stride(gpu: &Gpu, n: usize, block: u32) -> Result<LaunchConfig> {
    let wanted = n.div_ceil(block as usize).max(1);
    let cap = gpu.sm_count()? as usize * 8;
    Ok(LaunchConfig {
        grid_dim: (wanted.min(cap) as u32, 1, 1),
        block_dim: (block, 1, 1),
        shared_mem_bytes: 0,
    })
}

/// One block per row.
pub(crate) fn per_row(rows: usize, block: u32, shared_mem_bytes: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (rows.max(1) as u32, 1, 1),
        block_dim: (block, 1, 1),
        shared_mem_bytes,
    }
}
