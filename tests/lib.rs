//! Helpers shared by the workspace end-to-end tests: the `etl` command line as the binary parses
//! it, and SQL answers through the `sql` shell's session.

use std::path::Path;
use std::process::ExitCode;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use clap::{Parser, Subcommand};
use negopt_catalog::Catalog;
use negopt_etl::{crawl, curate};
use negopt_sql::{Access, Outcome, Session};

/// The `etl` subcommands these tests run, parsed by clap exactly as the binary parses them.
#[derive(Debug, Parser)]
#[command(name = "etl")]
pub struct Etl {
    #[command(subcommand)]
    command: EtlCommand,
}

#[derive(Debug, Subcommand)]
enum EtlCommand {
    Crawl(Box<crawl::cli::CrawlArgs>),
    Curate(curate::cli::CurateArgs),
}

/// Runs `etl ARGS...` (without the program name) against the catalog at `root`; errors become
/// their message.
pub async fn etl(root: &Path, args: &[&str]) -> Result<ExitCode, String> {
    let cli = Etl::try_parse_from(std::iter::once("etl").chain(args.iter().copied()))
        .map_err(|e| e.to_string())?;
    match cli.command {
        EtlCommand::Crawl(a) => crawl::cli::run(&a, root.to_path_buf())
            .await
            .map_err(|e| e.to_string()),
        EtlCommand::Curate(a) => curate::cli::run(&a, root.to_path_buf())
            .await
            .map_err(|e| e.to_string()),
    }
}

/// A read-only `sql` session over the catalog at `root`.
pub async fn sql(root: &Path) -> Session {
    let catalog = Catalog::open(root).expect("the catalog opens");
    Session::open(catalog, Access::ReadOnly)
        .await
        .expect("the session opens")
}

/// The single Int64 value `query` returns.
pub async fn scalar(session: &mut Session, query: &str) -> i64 {
    match session.execute(query).await {
        Ok(Outcome::Rows { batches, .. }) => {
            let batch = batches
                .iter()
                .find(|b| b.num_rows() > 0)
                .unwrap_or_else(|| panic!("no row from {query}"));
            batch.column(0).as_primitive::<Int64Type>().value(0)
        }
        Ok(other) => panic!("{query}: expected rows, got {other:?}"),
        Err(e) => panic!("{query}: {e}"),
    }
}
