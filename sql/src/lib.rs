//! A SQL shell (Apache DataFusion) over the negopt catalog: the library behind the `sql` binary.
//!
//! - [`Session`] registers every catalog table (latest version under its name, older ones through
//!   `table_at('name', version | 'timestamp')`), `information_schema` and the domain functions of
//!   [`udf`], and runs statements behind a read-only gate ([`Access`]).
//! - [`Shell`] is the loop around it: interactive with rustyline, or over `-c`, `-f` or stdin;
//!   meta-commands ([`MetaCommand`]), output formats ([`Format`]), Ctrl-C cancellation.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use negopt_catalog::Catalog;
//! use negopt_sql::{Access, Outcome, Session};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let catalog = Catalog::open_or_create(dir.path()).unwrap();
//! let mut session = Session::open(catalog, Access::ReadOnly).await.unwrap();
//! let Outcome::Rows { batches, .. } = session.execute("SELECT jaccard('a, b', 'b, c') AS j").await.unwrap() else {
//!     panic!("a query returns rows")
//! };
//! assert_eq!(batches[0].num_rows(), 1);
//! # });
//! ```
#![deny(missing_docs)]

mod cli;
mod error;
pub mod examples;
pub mod format;
mod help;
mod input;
mod meta;
mod output_file;
mod printer;
mod session;
mod shell;
pub mod udf;
mod write;

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{Context, Result};
use negopt_catalog::Catalog;

pub use cli::Args;
pub use error::{Position, StatementError};
pub use format::{Format, MaxRows};
pub use input::{Piece, StatementBuffer};
pub use meta::{Flow, MetaCommand, MetaError};
pub use output_file::{OutputError, OutputFile};
pub use printer::{PrintError, Printer, Timing, Verbosity};
pub use session::{Outcome, Session, TableState};
pub use shell::Shell;
pub use write::Access;

/// Runs the `sql` binary: opens the catalog, then the interactive shell or the script.
/// A closed stdout (`sql ... | head`) ends the run successfully.
pub fn run(args: Args) -> Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.tracing).context("--tracing")?,
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run_shell(args) {
        Err(error) if is_broken_pipe(&error) => Ok(ExitCode::SUCCESS),
        other => other,
    }
}

fn run_shell(args: Args) -> Result<ExitCode> {
    let output = args.output.as_deref().map(OutputFile::new).transpose()?;
    let verbosity = if args.quiet {
        Verbosity::Quiet
    } else {
        Verbosity::Normal
    };
    let printer = Printer::new(args.format, args.maxrows, verbosity, output);
    let access = if args.write {
        Access::ReadWrite
    } else {
        Access::ReadOnly
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    let root = Catalog::root_dir(args.catalog.clone());
    let catalog = Catalog::open(&root)?;
    let session = runtime.block_on(Session::open(catalog, access))?;
    if verbosity == Verbosity::Normal {
        for (name, state) in session.tables() {
            if let TableState::Damaged(reason) = state {
                eprintln!("sql: warning: table {name:?} is damaged and not registered: {reason}");
            }
        }
    }
    let interactive =
        args.command.is_none() && args.file.is_none() && std::io::stdin().is_terminal();
    let banner = format!(
        "negopt sql over {} ({} tables). \\? for help, \\q to quit.",
        session.catalog().root().display(),
        session.tables().len()
    );
    let mut shell = Shell::new(session, printer, runtime)?;

    if let Some(command) = &args.command {
        return shell.run_script(None, command.lines().map(|l| Ok(l.to_string())));
    }
    if let Some(path) = &args.file {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let name = path.display().to_string();
        return shell.run_script(Some(&name), std::io::BufReader::new(file).lines());
    }
    if interactive {
        if verbosity == Verbosity::Normal {
            println!("{banner}");
        }
        let history = args.history.or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".negopt_sql_history"))
        });
        return shell.run_interactive(history);
    }
    shell.run_script(Some("stdin"), std::io::stdin().lock().lines())
}

/// Whether the error chain holds a broken pipe (the reader of stdout went away).
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
