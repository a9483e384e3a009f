//! Stage 1 of NegOpt: supervised fine-tuning (`engine train --stage sft --config FILE.toml`).
//!
//! ```text
//! config.toml ─► tokenizer (load, or train on the streamed train split)
//!   ─► stream + tokenise train/val splits (data::examples) ─► Batcher
//!   loop step = 1..=steps:
//!     accumulate `grad_accum` micro-batches (dropout seeds from (seed, step, micro))
//!     NaN/Inf guard ─► clip by global norm ─► AdamW at lr(step) (warmup, cosine/linear)
//!     metrics.jsonl ◄─ loss, lr, grad_norm, tokens/s ; every eval_every: val loss
//!     every checkpoint_every: checkpoint (temp dir + rename), metrics ─► catalog train_metrics
//! ```
//! Everything random is a function of `(seed, step)` and the data [`Position`], all saved in
//! checkpoints, so `--resume` after a kill reproduces the uninterrupted loss curve exactly on
//! the CPU backend with a fixed thread count.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use negopt_catalog::Catalog;
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::checkpoint::{self, TrainState};
use crate::data::{Batcher, PairSource, Position, Split, examples, pairs};
use crate::error::{EngineError, Result};
use crate::metrics::{Metric, MetricLog};
use crate::optim::{AdamW, AdamWConfig, grad_norm};
use crate::t5::config::Config;
use crate::t5::dropout_plan::DropoutPlan;
use crate::t5::model::T5Model;
use crate::t5::params::T5Params;
use crate::tokenizer::Tokenizer;

/// Learning-rate decay after warmup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Cosine from the peak to `min_lr_ratio · lr`.
    Cosine,
    /// Linear from the peak to `min_lr_ratio · lr`.
    Linear,
}

/// `[data]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Catalog table with `prompt`, `negative_prompt`, `split`.
    pub table: String,
    /// Table version (latest when absent; the version used is logged and saved).
    pub version: Option<u64>,
    /// Source ids kept (including `</s>`).
    pub max_source_len: usize,
    /// Target ids kept (including `</s>`).
    pub max_target_len: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            table: "negative_prompts_db".into(),
            version: None,
            max_source_len: 64,
            max_target_len: 64,
        }
    }
}

/// `[model]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// A built-in config (`tiny`, `flan-t5-small`) or a `config.json` path.
    pub config: String,
    /// A directory with `model.safetensors`, `config.json`, `tokenizer.json` to start from
    /// (e.g. a converted flan-t5); overrides `config` and `tokenizer`.
    pub init: Option<PathBuf>,
    /// A `tokenizer.json`; when absent one is trained on the train split.
    pub tokenizer: Option<PathBuf>,
    /// Vocabulary size of a trained tokenizer.
    pub vocab_size: usize,
    /// Dropout probability (overrides the config's `dropout_rate`).
    pub dropout: Option<f32>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            config: "tiny".into(),
            init: None,
            tokenizer: None,
            vocab_size: 1000,
            dropout: None,
        }
    }
}

/// `[train]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoopConfig {
    /// Seed of init, data order and dropout.
    pub seed: u64,
    /// Optimizer steps.
    pub steps: u64,
    /// Examples per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Peak learning rate.
    pub lr: f32,
    /// Linear warmup steps.
    pub warmup_steps: u64,
    /// Decay after warmup.
    pub schedule: Schedule,
    /// Final lr as a fraction of the peak.
    pub min_lr_ratio: f32,
    /// Global gradient-norm clip (0 disables).
    pub clip_norm: f32,
    /// Label smoothing of the loss.
    pub label_smoothing: f32,
    /// Validation every N steps (and at the end).
    pub eval_every: u64,
    /// At most this many validation batches per evaluation.
    pub eval_batches: usize,
    /// Checkpoint every N steps (and at the end).
    pub checkpoint_every: u64,
    /// Checkpoints kept.
    pub keep_checkpoints: usize,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            seed: 0,
            steps: 300,
            batch_size: 16,
            grad_accum: 1,
            lr: 3e-3,
            warmup_steps: 20,
            schedule: Schedule::Cosine,
            min_lr_ratio: 0.1,
            clip_norm: 1.0,
            label_smoothing: 0.0,
            eval_every: 50,
            eval_batches: 8,
            checkpoint_every: 100,
            keep_checkpoints: 2,
        }
    }
}

/// The whole `--config FILE.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// `[data]`
    pub data: DataConfig,
    /// `[model]`
    pub model: ModelConfig,
    /// `[train]`
    pub train: LoopConfig,
    /// `[optimizer]`
    pub optimizer: AdamWConfig,
}

impl TrainConfig {
    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<TrainConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))?;
        let c: TrainConfig = toml::from_str(&text)
            .map_err(|e| EngineError::input(path.display().to_string(), e.to_string()))?;
        c.validate(&path.display().to_string())?;
        Ok(c)
    }

    /// Rejects values the loop cannot run.
    pub fn validate(&self, source: &str) -> Result<()> {
        let bad =
            |f: &str, p: &str| Err(EngineError::input(format!("{source}: {f}"), p.to_string()));
        let t = &self.train;
        if t.steps == 0 {
            return bad("train.steps", "must be positive");
        }
        if t.batch_size == 0 || t.grad_accum == 0 {
            return bad("train.batch_size / grad_accum", "must be positive");
        }
        if !(t.lr > 0.0 && t.lr.is_finite()) {
            return bad("train.lr", "must be a positive number");
        }
        if !(0.0..=1.0).contains(&t.min_lr_ratio) {
            return bad("train.min_lr_ratio", "must be within [0, 1]");
        }
        if !(0.0..1.0).contains(&t.label_smoothing) {
            return bad("train.label_smoothing", "must be within [0, 1)");
        }
        if t.eval_every == 0 || t.checkpoint_every == 0 {
            return bad("train.eval_every / checkpoint_every", "must be positive");
        }
        if self.data.max_source_len < 2 || self.data.max_target_len < 2 {
            return bad("data.max_*_len", "must be at least 2");
        }
        Ok(())
    }

    /// The learning rate at 1-based `step`.
    pub fn lr_at(&self, step: u64) -> f32 {
        let t = &self.train;
        if step <= t.warmup_steps {
            return t.lr * step as f32 / t.warmup_steps.max(1) as f32;
        }
        let span = (t.steps - t.warmup_steps.min(t.steps)).max(1) as f32;
        let progress = ((step - t.warmup_steps) as f32 / span).min(1.0);
        let decay = match t.schedule {
            Schedule::Cosine => 0.5 * (1.0 + (std::f32::consts::PI * progress).cos()),
            Schedule::Linear => 1.0 - progress,
        };
        t.lr * (t.min_lr_ratio + (1.0 - t.min_lr_ratio) * decay)
    }
}

/// Whether to continue from the run directory's newest checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Start fresh (the run directory must hold no checkpoint).
    Fresh,
    /// Continue from the newest checkpoint.
    FromLatest,
}

/// How a run should show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// An indicatif bar on stderr.
    Bar,
    /// Logs only.
    Quiet,
}

/// What a finished run reports.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// Run id.
    pub run_id: String,
    /// Final optimizer step.
    pub step: u64,
    /// First and last validation loss.
    pub val_loss: Option<(f64, f64)>,
    /// The final checkpoint.
    pub checkpoint: PathBuf,
}

/// Trains a tokenizer on the prompts and negatives of `source`'s train split, streamed into
/// the trainer (which keeps word counts, not the text).
pub fn train_tokenizer(source: &dyn PairSource, vocab_size: usize) -> Result<Tokenizer> {
    let (mut failure, mut rows) = (None, 0usize);
    let texts = pairs(source, Split::Train)?
        .map_while(|p| match p {
            Ok(p) => {
                rows += 1;
                Some(p)
            }
            Err(e) => {
                failure = Some(e);
                None
            }
        })
        .flat_map(|p| [p.prompt, p.negative]);
    let trained = Tokenizer::train(texts, vocab_size);
    if let Some(e) = failure {
        return Err(e);
    }
    if rows == 0 {
        return Err(EngineError::input(
            format!("split `train` of {}", source.describe()),
            "has no usable rows to train a tokenizer on\nhelp: check the table version and that curate assigned splits",
        ));
    }
    trained
}

fn micro_seed(seed: u64, step: u64, micro: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ step.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ (micro as u64).rotate_left(48)
}

/// Mean validation loss over at most `max_batches` batches.
pub fn eval_loss(
    be: &dyn Backend,
    model: &T5Model,
    val: &Batcher,
    max_batches: usize,
) -> Result<f64> {
    let (mut sum, mut tokens) = (0.0, 0usize);
    for idx in val.sequential().iter().take(max_batches.max(1)) {
        let batch = val.batch(idx);
        sum += model
            .forward(be, &batch, 0.0, &DropoutPlan::off())?
            .loss_sum();
        tokens += batch.target_tokens();
    }
    Ok(sum / tokens.max(1) as f64)
}

/// Runs (or resumes) SFT. `catalog` receives `train_metrics`; `run_dir` holds checkpoints,
/// `metrics.jsonl` and `loss.png`.
#[allow(clippy::too_many_arguments)]
pub fn run(
    be: &dyn Backend,
    cfg: &TrainConfig,
    source: &dyn PairSource,
    catalog: Option<&Catalog>,
    run_dir: &Path,
    resume: Resume,
    progress: Progress,
) -> Result<RunSummary> {
    std::fs::create_dir_all(run_dir).map_err(|e| EngineError::io(run_dir, e))?;
    let t = &cfg.train;

    let resume_from = match resume {
        Resume::FromLatest => Some(checkpoint::latest(run_dir)?.ok_or_else(|| {
            EngineError::input(
                run_dir.display().to_string(),
                "has no checkpoint to resume from",
            )
        })?),
        Resume::Fresh => {
            if let Some(existing) = checkpoint::latest(run_dir)? {
                return Err(EngineError::input(
                    run_dir.display().to_string(),
                    format!(
                        "already holds checkpoint {}\nhelp: pass --resume to continue it, or choose another --run-dir",
                        existing.display()
                    ),
                ));
            }
            None
        }
    };

    let (mut model, tok, mut opt, state) = match &resume_from {
        Some(dir) => {
            let (model, tok) = checkpoint::load_model(be, dir)?;
            let (opt, state) = checkpoint::load_training(be, dir, &model.config, cfg.optimizer)?;
            if let Some(seed) = state.seed.filter(|&s| s != t.seed) {
                return Err(EngineError::input(
                    dir.display().to_string(),
                    format!(
                        "was trained with seed {seed}, but this run's seed is {}; a resume with another seed would not continue the same run\nhelp: resume with --seed {seed}",
                        t.seed
                    ),
                ));
            }
            tracing::info!(checkpoint = %dir.display(), step = state.step, "resuming");
            (model, tok, opt, state)
        }
        None => {
            let (model, tok) = fresh_model(be, cfg, source)?;
            let opt = AdamW::new(be, &model.config, cfg.optimizer);
            let run_id = format!("sft-{}-{}", chrono_free_stamp(), t.seed);
            (
                model,
                tok,
                opt,
                TrainState {
                    run_id,
                    step: 0,
                    position: Position::default(),
                    seed: Some(t.seed),
                },
            )
        }
    };
    if let Some(p) = cfg.model.dropout {
        model.config.dropout_rate = p;
    }
    let max = (cfg.data.max_source_len, cfg.data.max_target_len);
    let train = Batcher::new(
        examples(source, Split::Train, &tok, max.0, max.1)?,
        t.batch_size,
        t.seed,
        tok.pad_id,
        model.config.decoder_start_token_id,
    );
    let val = Batcher::new(
        examples(source, Split::Val, &tok, max.0, max.1)?,
        t.batch_size,
        t.seed,
        tok.pad_id,
        model.config.decoder_start_token_id,
    );
    let mut log = MetricLog::open(run_dir, state.step)?;
    if let Some(catalog) = catalog {
        crate::metrics::ensure_table(catalog)?;
        log.sync_with_catalog(catalog, &state.run_id)?;
    }
    let run_id = state.run_id.clone();
    let params_json = serde_json::json!({ "run_id": run_id, "source": source.describe(), "run_dir": run_dir.display().to_string() });
    tracing::info!(run_id, source = %source.describe(), train = train.len(), val = val.len(), params = model.params.count(&model.config), "sft");

    let mut grads = T5Params::zeros(be, &model.config);
    let mut position = state.position;
    let mut order = train.epoch_order(position.epoch);
    let bar = match progress {
        Progress::Bar => ProgressBar::new(t.steps),
        Progress::Quiet => ProgressBar::hidden(),
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
        )
        .map_err(|e| crate::internal_err!("progress template: {e}"))?,
    );
    bar.set_position(state.step);
    let mut first_val = log.series("val", "loss").first().map(|&(_, v)| v);
    if first_val.is_none() {
        let v = eval_loss(be, &model, &val, t.eval_batches)?;
        log.push(Metric {
            run_id: run_id.clone(),
            step: 0,
            split: "val".into(),
            metric: "loss".into(),
            value: v,
        })?;
        first_val = Some(v);
    }
    let mut last_val = first_val;
    let mut checkpoint_dir = resume_from.clone().unwrap_or_default();

    for step in state.step + 1..=t.steps {
        let started = Instant::now();
        let mut batches = Vec::with_capacity(t.grad_accum);
        for _ in 0..t.grad_accum {
            if position.batch >= order.len() {
                position = Position {
                    epoch: position.epoch + 1,
                    batch: 0,
                };
                order = train.epoch_order(position.epoch);
            }
            batches.push(train.batch(&order[position.batch]));
            position.batch += 1;
        }
        let tokens: usize = batches.iter().map(|b| b.target_tokens()).sum();
        let mut loss_sum = 0.0;
        for (micro, batch) in batches.iter().enumerate() {
            let dropout =
                DropoutPlan::train(model.config.dropout_rate, micro_seed(t.seed, step, micro));
            let acts = model.forward(be, batch, t.label_smoothing, &dropout)?;
            loss_sum += acts.loss_sum();
            model.backward(
                be,
                batch,
                &acts,
                &mut grads,
                1.0 / tokens.max(1) as f32,
                &dropout,
            )?;
        }
        let loss = loss_sum / tokens.max(1) as f64;
        if !loss.is_finite() {
            return Err(EngineError::NonFinite {
                what: "loss",
                step,
                value: loss,
            });
        }
        let norm = grad_norm(be, &model.config, &grads)?;
        if !norm.is_finite() {
            return Err(EngineError::NonFinite {
                what: "gradient norm",
                step,
                value: norm,
            });
        }
        let clip = if t.clip_norm > 0.0 && norm > f64::from(t.clip_norm) {
            (f64::from(t.clip_norm) / norm) as f32
        } else {
            1.0
        };
        let lr = cfg.lr_at(step);
        opt.step(be, &model.config, &mut model.params, &grads, lr, clip)?;
        for (_, g, _) in grads.entries_mut(&model.config) {
            be.fill_zero(g)?;
        }
        let tok_s = tokens as f64 / started.elapsed().as_secs_f64().max(1e-9);
        for (metric, value) in [
            ("loss", loss),
            ("lr", f64::from(lr)),
            ("grad_norm", norm),
            ("tokens_per_s", tok_s),
        ] {
            log.push(Metric {
                run_id: run_id.clone(),
                step,
                split: "train".into(),
                metric: metric.into(),
                value,
            })?;
        }
        if step % t.eval_every == 0 || step == t.steps {
            let v = eval_loss(be, &model, &val, t.eval_batches)?;
            log.push(Metric {
                run_id: run_id.clone(),
                step,
                split: "val".into(),
                metric: "loss".into(),
                value: v,
            })?;
            last_val = Some(v);
        }
        bar.set_message(format!("loss {loss:.4} | {tok_s:.0} tok/s | lr {lr:.2e}"));
        bar.inc(1);
        if step % t.checkpoint_every == 0 || step == t.steps {
            let state = TrainState {
                run_id: run_id.clone(),
                step,
                position,
                seed: Some(t.seed),
            };
            checkpoint_dir =
                checkpoint::save(be, run_dir, &model, &tok, &opt, &state, t.keep_checkpoints)?;
            if let Some(catalog) = catalog {
                log.flush_to_catalog(catalog, params_json.clone())?;
            }
            crate::plot::loss_curve(&log, &run_dir.join("loss.png"))?;
        }
    }
    bar.finish_and_clear();
    Ok(RunSummary {
        run_id,
        step: t.steps,
        val_loss: first_val.zip(last_val),
        checkpoint: checkpoint_dir,
    })
}

/// A fresh model and tokenizer: from `[model] init`, or a built-in/JSON config with the
/// given or a newly trained tokenizer.
fn fresh_model(
    be: &dyn Backend,
    cfg: &TrainConfig,
    source: &dyn PairSource,
) -> Result<(T5Model, Tokenizer)> {
    if let Some(dir) = &cfg.model.init {
        return checkpoint::load_model(be, &checkpoint::resolve_model_dir(dir)?);
    }
    let tok = match &cfg.model.tokenizer {
        Some(path) => Tokenizer::load(path)?,
        None => train_tokenizer(source, cfg.model.vocab_size)?,
    };
    let config = if cfg.model.config.ends_with(".json") {
        Config::load(Path::new(&cfg.model.config))?
    } else {
        Config::builtin(&cfg.model.config, tok.vocab_size())?
    };
    tok.check_model_vocab(config.vocab_size)?;
    let params = T5Params::init(be, &config, cfg.train.seed)?;
    Ok((T5Model { config, params }, tok))
}

/// Seconds since the Unix epoch, as a run-id stamp.
fn chrono_free_stamp() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
