//! The ops, one file each: CPU reference (the spec), launcher(s), variant enum where there is
//! more than one variant, and the GPU-vs-CPU checker test.

pub mod adamw;
pub mod attention;
pub mod attention_softmax;
pub mod cast;
pub mod cross_entropy;
pub mod dropout;
pub mod elementwise;
pub mod embedding;
pub mod gated_gelu;
pub mod gemm;
pub mod gemm_strided;
pub mod global_norm;
pub mod rmsnorm;
