//! `engine`: train, generate and evaluate NegOpt's seq2seq model (prompt → negative prompt).
//!
//! Thin binary: clap parsing, then library calls; errors print once as `engine: <chain>`,
//! exit 0 ok, 1 a check failed, 2 error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use negopt_catalog::Catalog;
use negopt_engine::checkpoint::{load_model, resolve_model_dir};
use negopt_engine::data::CatalogSource;
use negopt_engine::device::Device;
use negopt_engine::eval::evaluate_sft;
use negopt_engine::generate::{Strategy, generate};
use negopt_engine::train::{Progress, Resume, TrainConfig, run as train_run, train_tokenizer};

/// Train, generate and evaluate the NegOpt negative-prompt model (T5 v1.1) on the catalog.
#[derive(Parser, Debug)]
#[command(name = "engine", version, about, long_about = None)]
struct Cli {
    /// Device for tensors and ops: cpu, cuda or auto (CUDA when available, else CPU).
    #[arg(long, global = true, default_value = "auto")]
    device: String,
    /// Worker threads for the CPU backend (fix it for bit-identical resumes); default: all cores.
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Catalog directory (default: $NEGOPT_CATALOG, else ./npdb).
    #[arg(long, global = true)]
    catalog: Option<PathBuf>,
    /// Log filter for tracing (e.g. info, engine=debug).
    #[arg(
        long,
        global = true,
        default_value = "warn,deltalake_core=error,buoyant_kernel=error"
    )]
    tracing: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Stage {
    /// Supervised fine-tuning on negative_prompts_db.
    Sft,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a model (`--stage sft --config FILE.toml`); checkpoints, metrics.jsonl and loss.png
    /// go to the run directory, metrics also to the catalog table train_metrics.
    Train(TrainArgs),
    /// Generate negative prompts for prompts with a trained checkpoint.
    Generate(GenerateArgs),
    /// Evaluate a checkpoint on the test split: NLL, perplexity, tag-set F1 vs the baseline.
    Eval(EvalArgs),
    /// Tokenizer tools.
    #[command(subcommand)]
    Tokenizer(TokenizerCommand),
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// Training stage.
    #[arg(long, value_enum)]
    stage: Stage,
    /// TOML config (`[data]`, `[model]`, `[train]`, `[optimizer]`).
    #[arg(long)]
    config: PathBuf,
    /// Run directory (default: `runs/<config file stem>`).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Continue from the run directory's newest checkpoint.
    #[arg(long)]
    resume: bool,
    /// Seed of weight init, data order and dropout; overrides the config's `[train] seed`.
    #[arg(
        long,
        long_help = "Seed of weight init, data order and dropout; overrides the config's `[train] seed`.\n\nA run is a function of its config, seed and data: the same seed (with the same --threads) reproduces a run bit for bit. A --resume must use the run's seed; the checkpoint records it and a different one is refused."
    )]
    seed: Option<u64>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct GenerateArgs {
    /// A checkpoint directory or a run directory (its newest checkpoint).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Beam search with N beams (default: greedy).
    #[arg(long, conflicts_with = "sample")]
    beams: Option<usize>,
    /// Sample instead of greedy decoding.
    #[arg(long)]
    sample: bool,
    /// Sampling temperature.
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Sample among the k most likely tokens (0: all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Longest negative prompt, in tokens.
    #[arg(long, default_value_t = 64)]
    max_len: usize,
    /// Prompts to write negative prompts for.
    #[arg(required = true)]
    prompts: Vec<String>,
}

#[derive(Args, Debug)]
struct EvalArgs {
    /// Stage to evaluate.
    #[arg(long, value_enum)]
    stage: Stage,
    /// A checkpoint directory or a run directory.
    #[arg(long)]
    checkpoint: PathBuf,
    /// The training config (for table, version and lengths); defaults apply without it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Exit 1 unless the model's tag-set F1 beats the most-common-negative baseline.
    #[arg(long)]
    require_beat_baseline: bool,
}

#[derive(Subcommand, Debug)]
enum TokenizerCommand {
    /// Train a unigram tokenizer on the train split's prompts and negatives.
    Train {
        /// Vocabulary size.
        #[arg(long, default_value_t = 1000)]
        vocab_size: usize,
        /// Table to read.
        #[arg(long, default_value = "negative_prompts_db")]
        table: String,
        /// Output tokenizer.json.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.tracing))
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("engine: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    if let Some(n) = cli.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("setting --threads")?;
    }
    let device: Device = cli.device.parse()?;
    let be = device.backend()?;
    let be = &*be;
    let catalog_root = Catalog::root_dir(cli.catalog.clone());
    let open_catalog = || {
        Catalog::open(&catalog_root)
            .with_context(|| format!("opening catalog {}", catalog_root.display()))
    };
    match cli.command {
        Command::Train(a) => {
            let Stage::Sft = a.stage;
            let mut cfg = TrainConfig::load(&a.config)?;
            if let Some(seed) = a.seed {
                cfg.train.seed = seed;
            }
            let catalog = open_catalog()?;
            let source = CatalogSource::open(catalog.clone(), &cfg.data.table, cfg.data.version)?;
            let run_dir = a.run_dir.unwrap_or_else(|| {
                PathBuf::from("runs").join(a.config.file_stem().unwrap_or_default())
            });
            let resume = if a.resume {
                Resume::FromLatest
            } else {
                Resume::Fresh
            };
            let progress = if a.quiet {
                Progress::Quiet
            } else {
                Progress::Bar
            };
            let s = train_run(
                be,
                &cfg,
                &source,
                Some(&catalog),
                &run_dir,
                resume,
                progress,
            )?;
            println!("run {} finished at step {}", s.run_id, s.step);
            if let Some((first, last)) = s.val_loss {
                println!("val loss {first:.4} -> {last:.4}");
            }
            println!("checkpoint {}", s.checkpoint.display());
            println!("loss curve {}", run_dir.join("loss.png").display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Generate(a) => {
            let (model, tok) = load_model(be, &resolve_model_dir(&a.checkpoint)?)?;
            let strategy = match (a.beams, a.sample) {
                (Some(width), _) => Strategy::Beam { width },
                (None, true) => Strategy::Sample {
                    temperature: a.temperature,
                    top_k: a.top_k,
                    top_p: a.top_p,
                    seed: a.seed,
                },
                (None, false) => Strategy::Greedy,
            };
            let outs = generate(be, &model, &tok, &a.prompts, strategy, 128, a.max_len)?;
            for (p, o) in a.prompts.iter().zip(outs) {
                println!("prompt:   {p}\nnegative: {o}\n");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval(a) => {
            let Stage::Sft = a.stage;
            let cfg = match &a.config {
                Some(p) => TrainConfig::load(p)?,
                None => TrainConfig::default(),
            };
            let (model, tok) = load_model(be, &resolve_model_dir(&a.checkpoint)?)?;
            let source = CatalogSource::open(open_catalog()?, &cfg.data.table, cfg.data.version)?;
            let r = evaluate_sft(
                be,
                &model,
                &tok,
                &source,
                cfg.data.max_source_len,
                cfg.data.max_target_len,
                cfg.train.batch_size,
            )?;
            println!("test examples  {}", r.examples);
            println!("NLL            {:.4}", r.nll);
            println!("perplexity     {:.3}", r.perplexity);
            println!("tag-set F1     {:.4} (model, greedy)", r.model_f1);
            println!(
                "tag-set F1     {:.4} (baseline: always \"{}\")",
                r.baseline_f1, r.baseline
            );
            for (p, g, t) in &r.samples {
                println!("\nprompt:    {p}\ngenerated: {g}\ntruth:     {t}");
            }
            if a.require_beat_baseline && r.model_f1 <= r.baseline_f1 {
                eprintln!(
                    "engine: check failed: model F1 {:.4} does not beat the baseline {:.4}",
                    r.model_f1, r.baseline_f1
                );
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Tokenizer(TokenizerCommand::Train {
            vocab_size,
            table,
            out,
        }) => {
            let source = CatalogSource::open(open_catalog()?, &table, None)?;
            let tok = train_tokenizer(&source, vocab_size)?;
            tok.save(&out)?;
            println!(
                "tokenizer with {} tokens written to {}",
                tok.vocab_size(),
                out.display()
            );
            if tok.vocab_size() == 0 {
                bail!("empty tokenizer");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
