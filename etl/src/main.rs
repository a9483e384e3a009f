//! `etl`: crawl prompt / negative-prompt pairs into the catalog, and curate them.
//! Each subcommand's flags live in the library module that runs it; see `etl --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use negopt_catalog::Catalog;
use negopt_etl::{crawl, curate, fixtures};

/// Crawl and curate the Negative Prompts DB.
#[derive(Debug, Parser)]
#[command(name = "etl", version, about)]
struct Cli {
    /// Catalog directory (default: $NEGOPT_CATALOG, else ./npdb).
    #[arg(long, global = true, value_name = "DIR")]
    catalog: Option<PathBuf>,
    /// Log filter for tracing (e.g. `info`, `negopt_etl=debug`); logs go to stderr.
    #[arg(long, global = true, default_value = "warn", value_name = "FILTER")]
    tracing: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Crawl sources into raw_pages and raw_pairs.
    Crawl(Box<crawl::cli::CrawlArgs>),
    /// Import local CSV / JSONL / Parquet files into raw_pairs.
    Import(negopt_etl::sources::import::ImportArgs),
    /// Curate raw_pairs into negative_prompts_db.
    Curate(curate::cli::CurateArgs),
    /// Serve the crawl fixtures on 127.0.0.1 until Ctrl-C.
    ServeFixtures(fixtures::ServeArgs),
}

/// Log noise of the Delta Lake dependencies that says nothing to a user (a new table "has no
/// files in its log segment"; binary columns get no statistics). `--tracing` can override it.
const QUIET_DEPENDENCIES: &str = "buoyant_kernel=off,deltalake_core::writer::stats=error";

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "{QUIET_DEPENDENCIES},{}",
            cli.tracing
        )))
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("etl: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let catalog = Catalog::root_dir(cli.catalog);
    runtime.block_on(async {
        match &cli.command {
            Command::Crawl(args) => crawl::cli::run(args, catalog).await.context("crawl"),
            Command::Import(args) => negopt_etl::sources::import::run(args, catalog)
                .await
                .context("import"),
            Command::Curate(args) => curate::cli::run(args, catalog).await.context("curate"),
            Command::ServeFixtures(args) => fixtures::serve(args)
                .await
                .map(|()| ExitCode::SUCCESS)
                .context("serve-fixtures"),
        }
    })
}
