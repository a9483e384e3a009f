//! Command-line flags of the `sql` binary, parsed by clap. This stage only validates; [`crate::run`]
//! turns the flags into a catalog, a session and a printer.

use std::path::PathBuf;

use clap::Parser;

use crate::format::{Format, MaxRows};

/// What `sql --help` shows above the flags.
const LONG_ABOUT: &str = "\
A SQL shell (Apache DataFusion) over the negopt catalog.

Every catalog table is registered under its name at its latest version; older versions are read
with the table function table_at('name', 3) or table_at('name', '2026-11-29T12:00:00Z').
information_schema is on. Domain functions: tags, strip_weights, jaccard, a1111_parse,
token_count (\\? lists them with examples).

With no -c or -f, an interactive shell starts when stdin is a terminal; otherwise the statements
are read from stdin. Scripts stop at the first failing statement.

Exit codes: 0 ok, 1 a statement failed, 2 the shell could not start (bad flag, no catalog).";

/// Flags of the `sql` binary.
#[derive(Debug, Parser)]
#[command(name = "sql", version, about = "SQL shell over the negopt catalog", long_about = LONG_ABOUT)]
pub struct Args {
    /// Run these statements (`;` separates several) and exit.
    #[arg(
        short = 'c',
        long = "command",
        value_name = "SQL",
        conflicts_with = "file"
    )]
    pub command: Option<String>,

    /// Run the statements and meta-commands in FILE and exit.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Catalog root directory [default: $NEGOPT_CATALOG, else ./npdb].
    #[arg(long, value_name = "DIR")]
    pub catalog: Option<PathBuf>,

    /// How query results are printed.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Write the query's result to FILE instead of stdout; the extension picks the format
    /// (.csv, .json, .ndjson/.jsonl or .parquet). Takes one query.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Most rows shown by the table format (a number or `inf`); other formats print every row.
    #[arg(long, value_name = "N", default_value = "40")]
    pub maxrows: MaxRows,

    /// Print only results and errors: no banner, no row-count footers.
    #[arg(short, long)]
    pub quiet: bool,

    /// Allow CREATE TABLE name AS SELECT ... and INSERT INTO as new catalog commits
    /// (without it the shell is read-only and refuses them).
    #[arg(long)]
    pub write: bool,

    /// History file of the interactive shell [default: ~/.negopt_sql_history].
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,

    /// Log filter for tracing output on stderr (e.g. `debug`, `negopt_sql=trace`). The default
    /// shows warnings of negopt's own crates only: the Delta kernel logs expected conditions
    /// (such as a table being created) at ERROR level.
    #[arg(
        long,
        value_name = "FILTER",
        default_value = "negopt_sql=warn,negopt_catalog=warn"
    )]
    pub tracing: String,
}
