//! Integration tests of negopt-engine, one binary (STYLE §9): op gradient checks, T5
//! gradient and Hugging Face parity checks, tokenizer, data, training, generation, eval.

mod data;
mod generate;
mod ops;
mod support;
mod t5;
mod train;
