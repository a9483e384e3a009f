//! Where results and messages go: results to stdout (or the `--output` file) in the session's
//! format; informational lines (row counts, commits) to stdout unless `--quiet`; timings to
//! stderr so they never mix into piped data.

use std::io::{self, Write};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::format::{self, Format, MaxRows};
use crate::output_file::{OutputError, OutputFile};

/// Whether informational lines are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Banner, row-count footers and commit lines are printed.
    Normal,
    /// Only results and errors (`--quiet`).
    Quiet,
}

/// Whether each statement's run time is printed (`\timing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Print `Time: ...` after each statement.
    On,
    /// Don't.
    Off,
}

/// Errors while printing.
#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    /// Writing to stdout failed (a closed pipe included).
    #[error("writing to stdout: {0}")]
    Stdout(#[from] io::Error),
    /// Encoding the result failed.
    #[error("formatting the result: {0}")]
    Format(#[from] arrow::error::ArrowError),
    /// The `--output` file could not take the result.
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// Prints results and messages for one shell run.
#[derive(Debug)]
pub struct Printer {
    /// Format of results on stdout (`--format`, `\format`).
    pub format: Format,
    /// Whether statement times are printed (`\timing`).
    pub timing: Timing,
    maxrows: MaxRows,
    verbosity: Verbosity,
    output: Option<OutputFile>,
}

impl Printer {
    /// A printer writing query results to `output` when given, else to stdout.
    pub fn new(
        format: Format,
        maxrows: MaxRows,
        verbosity: Verbosity,
        output: Option<OutputFile>,
    ) -> Self {
        Printer {
            format,
            timing: Timing::Off,
            maxrows,
            verbosity,
            output,
        }
    }

    /// Whether informational lines are printed.
    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// Prints a query's result: to the `--output` file if there is one, else to stdout.
    pub fn query_result(
        &mut self,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<(), PrintError> {
        match &mut self.output {
            Some(file) => {
                file.write(schema, batches)?;
                let message = format!(
                    "wrote {} rows to {}",
                    format::row_count(batches),
                    file.path().display()
                );
                self.info(&message)
            }
            None => self.result(schema, batches),
        }
    }

    /// Prints a result to stdout in the current format (meta-commands always print here).
    pub fn result(
        &mut self,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<(), PrintError> {
        let mut out = io::stdout().lock();
        let shown = format::write_result(&mut out, self.format, schema, batches, self.maxrows)?;
        if self.format == Format::Table && self.verbosity == Verbosity::Normal {
            writeln!(out, "{}", footer(format::row_count(batches), shown))?;
        }
        out.flush()?;
        Ok(())
    }

    /// Prints an informational line to stdout, unless quiet.
    pub fn info(&mut self, message: &str) -> Result<(), PrintError> {
        if self.verbosity == Verbosity::Normal {
            let mut out = io::stdout().lock();
            writeln!(out, "{message}")?;
            out.flush()?;
        }
        Ok(())
    }

    /// Prints a line to stdout whatever the verbosity (answers to meta-commands).
    pub fn line(&mut self, message: &str) -> Result<(), PrintError> {
        let mut out = io::stdout().lock();
        writeln!(out, "{message}")?;
        out.flush()?;
        Ok(())
    }

    /// Prints how long a statement took, when timing is on.
    pub fn elapsed(&self, took: Duration) {
        if self.timing == Timing::On {
            eprintln!("Time: {:.3} ms", took.as_secs_f64() * 1e3);
        }
    }
}

/// The line under a table: its row count, and how many were shown when `--maxrows` cut it.
fn footer(rows: usize, shown: usize) -> String {
    let noun = if rows == 1 { "row" } else { "rows" };
    if shown < rows {
        format!("({rows} {noun}; first {shown} shown, see --maxrows)")
    } else {
        format!("({rows} {noun})")
    }
}

#[cfg(test)]
mod tests {
    use super::footer;

    #[test]
    fn footers_count_rows_and_say_when_cut() {
        assert_eq!(footer(1, 1), "(1 row)");
        assert_eq!(footer(0, 0), "(0 rows)");
        assert_eq!(footer(100, 40), "(100 rows; first 40 shown, see --maxrows)");
    }
}
