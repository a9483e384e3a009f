//! The `etl curate` subcommand: arguments, progress display and the printed summary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use negopt_catalog::{At, Catalog};

use super::config::CurateConfig;
use super::{CurateError, curate_catalog, plan, session, tables};

/// `etl curate`: curate `raw_pairs` into `negative_prompts_db`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Curate raw_pairs into negative_prompts_db (normalise, filter, dedup, near-dup clusters, split)",
    long_about = "Reads a version of the catalog table raw_pairs (what `etl crawl` wrote), runs the \
                  curation plan on DataFusion and writes three catalog tables, one new version each: \
                  negative_prompts_db (the curated pairs with cluster ids and splits), \
                  curation_rejects (every dropped row with its stage and reason) and curation_report \
                  (counts per stage, reason and source; length distributions). Their commits name \
                  the raw_pairs version and the config hash. Prints the report's summary."
)]
pub struct CurateArgs {
    /// TOML config; every key is optional (see `--print-config` for the defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Version of raw_pairs to read (default: the latest).
    #[arg(long, value_name = "N")]
    pub raw_version: Option<u64>,
    /// DataFusion partitions (threads); the output does not depend on it.
    #[arg(long, default_value_t = default_threads(), value_name = "N")]
    pub threads: usize,
    /// Print the plan of every stage (SQL, logical and physical plans) and exit without running.
    #[arg(long)]
    pub explain: bool,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `etl curate` against the catalog at `catalog_root`.
pub async fn run(args: &CurateArgs, catalog_root: PathBuf) -> Result<ExitCode, CurateError> {
    let config = match &args.config {
        Some(path) => CurateConfig::from_file(path)?,
        None => CurateConfig::default(),
    };
    if args.print_config {
        print!("{}", config.to_toml());
        return Ok(ExitCode::SUCCESS);
    }
    let catalog = Catalog::open(&catalog_root)?;
    let at = args.raw_version.map_or(At::Latest, At::Version);
    if args.explain {
        let ctx = session(&config, args.threads);
        let provider = catalog.provider(tables::RAW_PAIRS, at, &ctx).await?;
        ctx.register_table(plan::INPUT, provider)
            .map_err(|e| CurateError::plan("input", e))?;
        print!("{}", plan::explain(&ctx, &config).await?);
        return Ok(ExitCode::SUCCESS);
    }
    let progress = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} curate [{elapsed}] {msg}")
            .expect("static template"),
    );
    progress.enable_steady_tick(Duration::from_millis(120));
    let (output, written) = curate_catalog(&catalog, &config, at, args.threads, |stage| {
        progress.set_message(stage.to_string());
    })
    .await?;
    progress.finish_and_clear();
    for (stage, time) in &output.times {
        tracing::info!(stage, seconds = time.as_secs_f64(), "curate stage done");
    }
    print!("{}", output.report.summary());
    println!(
        "  wrote {} v{}, {} v{}, {} v{} from {} v{} (config {})",
        tables::DB,
        written.db,
        tables::REJECTS,
        written.rejects,
        tables::REPORT,
        written.report,
        tables::RAW_PAIRS,
        written.raw_pairs,
        &config.hash()[..12]
    );
    Ok(ExitCode::SUCCESS)
}
