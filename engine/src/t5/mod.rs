//! T5 v1.1 (flan-t5 layout) with explicit forward and backward over the op interface.
//!
//! Files follow the Hugging Face modules: [`config`] (`T5Config`), [`params`] (state-dict
//! names), [`position_bias`], [`attention`] (`T5Attention`), [`feed_forward`] (`T5LayerFF`),
//! [`stack`] (`T5Stack`/`T5Block`), [`model`] (`T5ForConditionalGeneration`), [`weights`]
//! (safetensors load/save), [`dropout_plan`] (reproducible dropout masks), [`linear`]. The
//! KV-cache decoding step lives with the decoders in [`crate::generate`].

pub mod attention;
pub mod config;
pub mod dropout_plan;
pub mod feed_forward;
pub mod linear;
pub mod model;
pub mod params;
pub mod position_bias;
pub mod stack;
pub mod weights;
