//! `T5ForConditionalGeneration`: encoder, decoder, untied `lm_head`, mean token
//! cross-entropy over labels (ignore index −100), forward and backward.
//!
//! ```text
//! input_ids ─► encoder ─► hidden (B·S, C) ─┐
//! decoder_input_ids ─► decoder (causal, cross-attends) ─► (B·T, C) ─► lm_head ─► logits (B·T, V)
//! labels ─► cross-entropy(logits) ─► loss
//! ```
//! v1.1 has no `d_model^-½` rescale before `lm_head` (that belongs to tied embeddings).

use crate::backend::{Accumulate, Backend, Masking};
use crate::error::{EngineError, Result};
use crate::t5::config::Config;
use crate::t5::dropout_plan::DropoutPlan;
use crate::t5::linear::{linear, linear_backward};
use crate::t5::params::T5Params;
use crate::t5::stack::{CrossInput, StackActs, StackInput, stack_backward, stack_forward};
use crate::tensor::Tensor;

/// Labels that take no part in the loss (PyTorch's default ignore index).
pub const IGNORE_INDEX: i32 = -100;

/// A padded batch of source/target pairs, all row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Seq2SeqBatch {
    /// B
    pub b: usize,
    /// S, source length.
    pub s: usize,
    /// T, target length.
    pub t: usize,
    /// (B·S) source ids, padded with the pad id.
    pub input_ids: Vec<u32>,
    /// (B·S) 1 for tokens, 0 for padding.
    pub attention_mask: Vec<f32>,
    /// (B·T) decoder inputs: the labels shifted right after the decoder start id.
    pub decoder_input_ids: Vec<u32>,
    /// (B·T) targets, [`IGNORE_INDEX`] on padding.
    pub labels: Vec<i32>,
}

impl Seq2SeqBatch {
    /// Builds decoder inputs from labels as transformers' `_shift_right` does.
    pub fn shift_right(labels: &[i32], t: usize, start: u32, pad: u32) -> Vec<u32> {
        labels
            .chunks(t)
            .flat_map(|row| {
                std::iter::once(start).chain(
                    row[..t - 1]
                        .iter()
                        .map(|&l| if l < 0 { pad } else { l as u32 }),
                )
            })
            .collect()
    }

    /// Tokens that count in the loss.
    pub fn target_tokens(&self) -> usize {
        self.labels.iter().filter(|&&l| l >= 0).count()
    }

    /// Checks lengths agree, naming the field that does not.
    pub fn validate(&self) -> Result<()> {
        let bad = |f: &str, n: usize, want: usize| {
            Err(EngineError::input(
                format!("batch field {f}"),
                format!("has {n} entries, expected {want}"),
            ))
        };
        if self.input_ids.len() != self.b * self.s {
            return bad("input_ids", self.input_ids.len(), self.b * self.s);
        }
        if self.attention_mask.len() != self.b * self.s {
            return bad("attention_mask", self.attention_mask.len(), self.b * self.s);
        }
        if self.decoder_input_ids.len() != self.b * self.t {
            return bad(
                "decoder_input_ids",
                self.decoder_input_ids.len(),
                self.b * self.t,
            );
        }
        if self.labels.len() != self.b * self.t {
            return bad("labels", self.labels.len(), self.b * self.t);
        }
        Ok(())
    }
}

/// A forward pass's saved values.
#[derive(Debug)]
pub struct ForwardActs {
    mask: Tensor,
    encoder: StackActs,
    decoder: StackActs,
    /// (B·T, V)
    pub logits: Tensor,
    /// Per-target-token losses (0 where ignored).
    pub token_losses: Vec<f32>,
    /// The label smoothing the losses used (the backward uses the same).
    smoothing: f32,
}

impl ForwardActs {
    /// Σ token losses in f64.
    pub fn loss_sum(&self) -> f64 {
        self.token_losses.iter().map(|&l| f64::from(l)).sum()
    }
}

/// T5 v1.1 for conditional generation.
#[derive(Debug, Clone)]
pub struct T5Model {
    /// The configuration.
    pub config: Config,
    /// The weights.
    pub params: T5Params,
}

impl T5Model {
    fn stack_inputs<'a>(
        &self,
        batch: &'a Seq2SeqBatch,
        mask: &'a Tensor,
        encoder_out: Option<&'a Tensor>,
    ) -> (StackInput<'a>, StackInput<'a>) {
        let enc = StackInput {
            ids: &batch.input_ids,
            b: batch.b,
            t: batch.s,
            masking: Masking::Bidirectional,
            key_mask: Some(mask),
            cross: None,
        };
        let dec = StackInput {
            ids: &batch.decoder_input_ids,
            b: batch.b,
            t: batch.t,
            masking: Masking::Causal,
            key_mask: None,
            cross: encoder_out.map(|hidden| CrossInput {
                hidden,
                mask,
                len: batch.s,
            }),
        };
        (enc, dec)
    }

    /// Forward pass with loss (label smoothing `smoothing`).
    pub fn forward(
        &self,
        be: &dyn Backend,
        batch: &Seq2SeqBatch,
        smoothing: f32,
        dropout: &DropoutPlan,
    ) -> Result<ForwardActs> {
        batch.validate()?;
        let p = &self.params;
        let mask = be.upload(&[batch.b, batch.s], &batch.attention_mask)?;
        let (enc_in, _) = self.stack_inputs(batch, &mask, None);
        let encoder = stack_forward(be, &p.encoder, &p.shared, &self.config, &enc_in, dropout)?;
        let (_, dec_in) = self.stack_inputs(batch, &mask, Some(&encoder.out));
        let decoder = stack_forward(be, &p.decoder, &p.shared, &self.config, &dec_in, dropout)?;
        let logits = linear(be, &decoder.out, &p.lm_head)?;
        let token_losses = be.cross_entropy_forward(&logits, &batch.labels, smoothing)?;
        Ok(ForwardActs {
            mask,
            encoder,
            decoder,
            logits,
            token_losses,
            smoothing,
        })
    }

    /// Backward of `scale · Σ token losses`, accumulating into `grads`.
    pub fn backward(
        &self,
        be: &dyn Backend,
        batch: &Seq2SeqBatch,
        acts: &ForwardActs,
        grads: &mut T5Params,
        scale: f32,
        dropout: &DropoutPlan,
    ) -> Result<()> {
        let p = &self.params;
        let c = &self.config;
        let mut dlogits = be.zeros(acts.logits.shape());
        be.cross_entropy_backward(
            &mut dlogits,
            &acts.logits,
            &batch.labels,
            acts.smoothing,
            scale,
        )?;
        let mut ddec = be.zeros(acts.decoder.out.shape());
        linear_backward(
            be,
            &mut ddec,
            Accumulate::Overwrite,
            &mut grads.lm_head,
            &dlogits,
            &acts.decoder.out,
            &p.lm_head,
        )?;
        drop(dlogits);
        let mut denc = be.zeros(acts.encoder.out.shape());
        let (enc_in, dec_in) = self.stack_inputs(batch, &acts.mask, Some(&acts.encoder.out));
        stack_backward(
            be,
            &p.decoder,
            &mut grads.decoder,
            &mut grads.shared,
            c,
            &dec_in,
            &acts.decoder,
            ddec,
            Some(&mut denc),
            dropout,
        )?;
        stack_backward(
            be,
            &p.encoder,
            &mut grads.encoder,
            &mut grads.shared,
            c,
            &enc_in,
            &acts.encoder,
            denc,
            None,
            dropout,
        )
    }

    /// Mean loss over target tokens, no dropout: what evaluation reports.
    pub fn mean_loss(&self, be: &dyn Backend, batch: &Seq2SeqBatch) -> Result<f64> {
        let acts = self.forward(be, batch, 0.0, &DropoutPlan::off())?;
        Ok(acts.loss_sum() / batch.target_tokens().max(1) as f64)
    }
}
