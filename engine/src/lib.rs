//! negopt-engine: tensors, an op interface with a CPU backend (a CUDA one plugs into the same
//! trait), T5 v1.1 with explicit forward/backward, a tokenizer, catalog data streaming, and
//! the SFT trainer, generator and evaluator behind the `engine` binary.
//!
//! Main types: [`tensor::Tensor`] (shape + storage), [`backend::Backend`] (every op, forward
//! and backward), [`device::Device`] (`cpu|cuda|auto`), [`t5::model::T5Model`] (T5 v1.1 with
//! explicit backward, Hugging Face names), [`tokenizer::Tokenizer`], [`data::PairSource`]
//! (catalog splits → padded batches), [`train::run`] (SFT), [`generate::generate`] (greedy,
//! beam, sampling with a KV cache), [`eval::evaluate_sft`].
//!
//! ```text
//! negative_prompts_db vN ─► data ─► tokenizer ─► Batcher ─► T5Model fwd/bwd (Backend ops)
//!   ─► optim::AdamW ─► checkpoint (safetensors + config.json + tokenizer.json)
//!   ─► metrics (metrics.jsonl, catalog train_metrics, loss.png) ─► generate / eval
//! ```
//!
//! Tests: `cargo test -p negopt-engine` (op and whole-model gradient checks, Hugging Face
//! parity on golden files from `engine/scripts/hf_parity.py`, training, resume after kill -9,
//! decoding). Bench: `cargo bench -p negopt-benches --bench train`.
//!
//! ```
//! use negopt_engine::backend::{Accumulate, GemmShape, MatView};
//! use negopt_engine::device::Device;
//!
//! let be = Device::Cpu.backend().unwrap();
//! let a = be.upload(&[2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
//! let id = be.upload(&[2, 2], &[1.0, 0.0, 0.0, 1.0]).unwrap();
//! let mut c = be.zeros(&[2, 2]);
//! let shape = GemmShape { batch: [1, 1], m: 2, n: 2, k: 2 };
//! be.matmul(&mut c, MatView::rows(2), &a, MatView::rows(2), &id, MatView::rows(2), shape, Accumulate::Overwrite)
//!     .unwrap();
//! assert_eq!(be.download(&c).unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
//! ```
#![deny(missing_docs)]

pub mod backend;
pub mod checkpoint;
pub mod cpu;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod generate;
pub mod metrics;
pub mod optim;
pub mod plot;
pub mod safetensors_file;
pub mod t5;
pub mod tensor;
pub mod tokenizer;
pub mod train;
