//! AdamW over a [`T5Params`] with global-norm gradient clipping. The moments are two more
//! `T5Params`, walked in the same order as weights and gradients; they are saved in
//! checkpoints (`optimizer.safetensors`, names `m.<param>` / `v.<param>`) so a resumed run
//! continues bit-identically.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::backend::{AdamWStep, Backend};
use crate::error::Result;
use crate::safetensors_file::{TensorFile, write};
use crate::t5::config::Config;
use crate::t5::params::T5Params;

/// AdamW hyper-parameters (PyTorch defaults except weight decay).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWConfig {
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Denominator epsilon.
    pub eps: f32,
    /// Decoupled weight decay, not applied to norm weights (as transformers' Trainer does).
    pub weight_decay: f32,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// AdamW state: step count and moments.
#[derive(Debug, Clone)]
pub struct AdamW {
    /// Hyper-parameters.
    pub config: AdamWConfig,
    /// Updates applied so far.
    pub t: u64,
    m: T5Params,
    v: T5Params,
}

/// `√(Σ g²)` over every gradient, deterministic for a fixed thread count.
pub fn grad_norm(be: &dyn Backend, c: &Config, grads: &T5Params) -> Result<f64> {
    let mut sum = 0.0;
    for (_, g) in grads.entries(c) {
        sum += be.sum_squares(g)?;
    }
    Ok(sum.sqrt())
}

impl AdamW {
    /// Fresh state with zero moments.
    pub fn new(be: &dyn Backend, model: &Config, config: AdamWConfig) -> AdamW {
        AdamW {
            config,
            t: 0,
            m: T5Params::zeros(be, model),
            v: T5Params::zeros(be, model),
        }
    }

    /// One update at learning rate `lr`; gradients are multiplied by `grad_scale` first
    /// (clipping and averaging folded into one factor).
    pub fn step(
        &mut self,
        be: &dyn Backend,
        c: &Config,
        params: &mut T5Params,
        grads: &T5Params,
        lr: f32,
        grad_scale: f32,
    ) -> Result<()> {
        self.t += 1;
        let grads = grads.entries(c);
        let ms = self.m.entries_mut(c);
        let vs = self.v.entries_mut(c);
        for ((((name, p, _), (_, g)), (_, m, _)), (_, v, _)) in
            params.entries_mut(c).into_iter().zip(grads).zip(ms).zip(vs)
        {
            let weight_decay = if name.contains("layer_norm") {
                0.0
            } else {
                self.config.weight_decay
            };
            let step = AdamWStep {
                lr,
                beta1: self.config.beta1,
                beta2: self.config.beta2,
                eps: self.config.eps,
                weight_decay,
                t: self.t,
                grad_scale,
            };
            be.adamw_step(p, g, m, v, &step)?;
        }
        Ok(())
    }

    /// Writes the moments and step count.
    pub fn save(&self, be: &dyn Backend, c: &Config, path: &Path) -> Result<()> {
        let mut tensors = Vec::new();
        for (prefix, state) in [("m", &self.m), ("v", &self.v)] {
            for (name, t) in state.entries(c) {
                tensors.push((
                    format!("{prefix}.{name}"),
                    t.shape().to_vec(),
                    be.download(t)?,
                ));
            }
        }
        write(
            path,
            &tensors,
            HashMap::from([("t".to_string(), self.t.to_string())]),
        )
    }

    /// Reads state written by [`AdamW::save`].
    pub fn load(be: &dyn Backend, c: &Config, config: AdamWConfig, path: &Path) -> Result<AdamW> {
        let mut file = TensorFile::read(path)?;
        let t = file
            .metadata()
            .get("t")
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| {
                crate::error::EngineError::input(
                    path.display().to_string(),
                    "optimizer state lacks its step count `t`",
                )
            })?;
        let mut opt = AdamW::new(be, c, config);
        opt.t = t;
        for (prefix, state) in [("m", &mut opt.m), ("v", &mut opt.v)] {
            for (name, tensor, _) in state.entries_mut(c) {
                let data = file.take(&format!("{prefix}.{name}"), tensor.shape())?;
                *tensor = be.upload(tensor.shape(), &data)?;
            }
        }
        Ok(opt)
    }
}
