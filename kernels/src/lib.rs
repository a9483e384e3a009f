//! Handwritten CUDA kernels for the negopt engine, compiled at run time with NVRTC, each with
//! a CPU reference that is its specification.
//!
//! - [`Family`]: one `.cu` file under `kernels/cu/` (GEMM, attention, RMSNorm, gated-GELU,
//!   embedding, cross-entropy, AdamW, global norm, casts), embedded in the binary.
//! - [`Compiler`]: NVRTC through cudarc's dynamically loaded bindings, for an explicit
//!   [`Arch`] (`compute_80` PTX or `sm_90a` CUBIN), with a [`DiskCache`] keyed by source hash,
//!   target and NVRTC version. No nvcc and no CUDA toolkit at build time.
//! - [`Gpu`]: a device plus its loaded modules. On a machine without a driver, a device or
//!   NVRTC, [`Gpu::new`] returns [`Error::CudaUnavailable`] / [`Error::NvrtcUnavailable`]
//!   with the reason, so the engine falls back to its CPU backend.
//! - [`ops`]: per op, the CPU reference (`<op>_forward_cpu` / `<op>_backward_cpu`), the
//!   launcher(s), and a test that checks the GPU against the reference (it prints that it
//!   skipped where there is no GPU).
//!
//! Why no `cuda` cargo feature: cudarc loads `libcuda` and `libnvrtc` with `dlopen` at run
//! time, so this crate builds everywhere and decides at run time; a feature would only add a
//! second build to keep working.
//!
//! ```
//! use negopt_kernels::{Error, Gpu, ops::gated_gelu::gated_gelu_forward_cpu};
//!
//! // The CPU references run anywhere.
//! let out = gated_gelu_forward_cpu(&[1.0], &[2.0]);
//! assert!((out[0] - 2.0 * 0.841_192).abs() < 1e-5);
//!
//! // The GPU is optional: without one this is an error with a reason, never a panic.
//! match Gpu::new(0) {
//!     Ok(gpu) => println!("running on {} ({})", gpu.name(), gpu.arch()),
//!     Err(Error::CudaUnavailable { reason } | Error::NvrtcUnavailable { reason }) => {
//!         println!("CPU only: {reason}")
//!     }
//!     Err(e) => panic!("{e}"),
//! }
//! ```
#![deny(missing_docs)]

mod arch;
mod cache;
mod compiler;
mod error;
mod family;
mod gpu;
mod launch;
pub mod ops;
#[cfg(test)]
mod testing;

pub use arch::Arch;
pub use cache::DiskCache;
pub use compiler::{Compiled, Compiler};
pub use error::{Error, Result};
pub use family::{Dir, Dtype, Family, kernel_name};
pub use gpu::Gpu;
