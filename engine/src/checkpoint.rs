//! Checkpoint directories: everything a run needs to continue or to generate.
//!
//! ```text
//! <run>/checkpoints/step-000120/
//!   model.safetensors   weights, Hugging Face names (loads in transformers)
//!   config.json         T5Config
//!   tokenizer.json      the tokenizer the model was trained with
//!   optimizer.safetensors  AdamW moments + step count
//!   state.json          step, data position, run id, seed
//! ```
//! A checkpoint is written to `step-N.tmp`, then renamed: a crash leaves either the previous
//! checkpoint set or the new complete one, never a half-written directory under a final name.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::data::Position;
use crate::error::{EngineError, Result};
use crate::optim::{AdamW, AdamWConfig};
use crate::t5::config::Config;
use crate::t5::model::T5Model;
use crate::t5::weights::{load_params, save_params};
use crate::tokenizer::Tokenizer;

/// Training progress stored beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Run id (also in `train_metrics`).
    pub run_id: String,
    /// Optimizer steps done.
    pub step: u64,
    /// The next batch.
    pub position: Position,
    /// The run's seed (init, data order, dropout); a resume must use the same one. Absent in
    /// checkpoints written before it was recorded.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// The checkpoint directory for `step` under `run_dir`.
pub fn step_dir(run_dir: &Path, step: u64) -> PathBuf {
    run_dir.join("checkpoints").join(format!("step-{step:06}"))
}

/// The newest complete checkpoint of a run, if any.
pub fn latest(run_dir: &Path) -> Result<Option<PathBuf>> {
    let dir = run_dir.join("checkpoints");
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut best: Option<(u64, PathBuf)> = None;
    for entry in std::fs::read_dir(&dir).map_err(|e| EngineError::io(&dir, e))? {
        let path = entry.map_err(|e| EngineError::io(&dir, e))?.path();
        let step = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("step-"))
            .and_then(|s| s.parse::<u64>().ok());
        if let Some(step) = step
            && best.as_ref().is_none_or(|(b, _)| step > *b)
        {
            best = Some((step, path));
        }
    }
    Ok(best.map(|(_, p)| p))
}

/// A directory holding a model: itself, or a run directory's newest checkpoint.
pub fn resolve_model_dir(path: &Path) -> Result<PathBuf> {
    if path.join("model.safetensors").is_file() {
        return Ok(path.to_path_buf());
    }
    latest(path)?.ok_or_else(|| {
        EngineError::input(path.display().to_string(), "holds no model.safetensors and no checkpoints/step-* directory\nhelp: pass a checkpoint directory or a run directory")
    })
}

/// Writes a checkpoint atomically (temp dir + rename) and removes all but the newest `keep`.
#[allow(clippy::too_many_arguments)]
pub fn save(
    be: &dyn Backend,
    run_dir: &Path,
    model: &T5Model,
    tok: &Tokenizer,
    opt: &AdamW,
    state: &TrainState,
    keep: usize,
) -> Result<PathBuf> {
    let dest = step_dir(run_dir, state.step);
    let tmp = dest.with_extension("tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| EngineError::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| EngineError::io(&tmp, e))?;
    save_params(
        be,
        &model.config,
        &model.params,
        &tmp.join("model.safetensors"),
    )?;
    model.config.save(&tmp.join("config.json"))?;
    tok.save(&tmp.join("tokenizer.json"))?;
    opt.save(be, &model.config, &tmp.join("optimizer.safetensors"))?;
    let state_json =
        serde_json::to_string_pretty(state).map_err(|e| crate::internal_err!("state json: {e}"))?;
    std::fs::write(tmp.join("state.json"), state_json)
        .map_err(|e| EngineError::io(tmp.join("state.json"), e))?;
    if dest.exists() {
        std::fs::remove_dir_all(&dest).map_err(|e| EngineError::io(&dest, e))?;
    }
    std::fs::rename(&tmp, &dest).map_err(|e| EngineError::io(&dest, e))?;
    prune(run_dir, keep)?;
    Ok(dest)
}

fn prune(run_dir: &Path, keep: usize) -> Result<()> {
    let dir = run_dir.join("checkpoints");
    let mut steps: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| EngineError::io(&dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_none()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("step-"))
        })
        .collect();
    steps.sort();
    let excess = steps.len().saturating_sub(keep.max(1));
    for old in &steps[..excess] {
        std::fs::remove_dir_all(old).map_err(|e| EngineError::io(old, e))?;
    }
    Ok(())
}

/// A model (weights, config, tokenizer) from a checkpoint or model directory.
pub fn load_model(be: &dyn Backend, dir: &Path) -> Result<(T5Model, Tokenizer)> {
    let config = Config::load(&dir.join("config.json"))?;
    let params = load_params(be, &config, &dir.join("model.safetensors"))?;
    let tok = Tokenizer::load(&dir.join("tokenizer.json"))?;
    tok.check_model_vocab(config.vocab_size)?;
    Ok((T5Model { config, params }, tok))
}

/// Optimizer state and progress from a checkpoint directory.
pub fn load_training(
    be: &dyn Backend,
    dir: &Path,
    config: &Config,
    adamw: AdamWConfig,
) -> Result<(AdamW, TrainState)> {
    let opt = AdamW::load(be, config, adamw, &dir.join("optimizer.safetensors"))?;
    let path = dir.join("state.json");
    let text = std::fs::read_to_string(&path).map_err(|e| EngineError::io(&path, e))?;
    let state = serde_json::from_str(&text).map_err(|e| {
        EngineError::input(path.display().to_string(), format!("bad state.json: {e}"))
    })?;
    Ok((opt, state))
}
