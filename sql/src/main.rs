//! `sql`: a SQL shell over the negopt catalog. See `sql --help` and the `negopt_sql` docs.

use std::process::ExitCode;

use clap::Parser;
use negopt_sql::Args;

fn main() -> ExitCode {
    let args = Args::parse();
    match negopt_sql::run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("sql: {error:#}");
            ExitCode::from(2)
        }
    }
}
