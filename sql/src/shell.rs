//! The read-run-print loop, interactive (rustyline) or over a script (`-c`, `-f`, stdin).
//!
//! ```text
//!   lines ─► StatementBuffer ─► Piece::Meta ──────► MetaCommand::run ─┐
//!                            └► Piece::Statement ─► Session::execute ─┴► Printer
//!                                                    ▲ raced against Ctrl-C (SIGINT)
//! ```
//!
//! Ctrl-C: a SIGINT handler is installed for the whole run. While a statement runs, SIGINT drops
//! its future, which cancels DataFusion's tasks, and the statement fails with "query cancelled";
//! the interactive shell then prompts again, a script stops (exit 1). At the interactive prompt
//! the terminal is in raw mode and Ctrl-C is a key: it clears the pending statement.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use futures::FutureExt;
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use tokio::runtime::Runtime;

use crate::error::{Position, StatementError};
use crate::input::{Piece, StatementBuffer};
use crate::meta::{Flow, MetaCommand, MetaError};
use crate::printer::{PrintError, Printer};
use crate::session::{Outcome, Session};

const PROMPT: &str = "sql> ";
const CONTINUATION_PROMPT: &str = "...> ";

/// Why a piece of input failed.
#[derive(Debug, thiserror::Error)]
enum PieceError {
    #[error(transparent)]
    Statement(#[from] StatementError),
    #[error(transparent)]
    Meta(MetaError),
    /// Output failures end the whole run.
    #[error(transparent)]
    Print(#[from] PrintError),
}

impl From<MetaError> for PieceError {
    fn from(error: MetaError) -> Self {
        match error {
            MetaError::Print(e) => PieceError::Print(e),
            other => PieceError::Meta(other),
        }
    }
}

/// A session, its printer and the runtime that drives them.
pub struct Shell {
    session: Session,
    printer: Printer,
    runtime: Runtime,
    interrupts: Interrupts,
}

impl Shell {
    /// A shell over `session`; installs the SIGINT handler.
    pub fn new(session: Session, printer: Printer, runtime: Runtime) -> Result<Shell> {
        let interrupts = Interrupts::install(&runtime).context("installing the Ctrl-C handler")?;
        Ok(Shell {
            session,
            printer,
            runtime,
            interrupts,
        })
    }

    /// Runs a script; stops at the first failing piece with exit code 1. `name` labels error
    /// locations (`None` for `-c`, whose text the user just typed).
    pub fn run_script(
        &mut self,
        name: Option<&str>,
        lines: impl Iterator<Item = io::Result<String>>,
    ) -> Result<ExitCode> {
        let mut buffer = StatementBuffer::new();
        for line in lines {
            let line = line.context("reading the script")?;
            for piece in buffer.push_line(&line) {
                if let Some(code) = self.run_script_piece(name, &piece)? {
                    return Ok(code);
                }
            }
        }
        if let Some(piece) = buffer.finish()
            && let Some(code) = self.run_script_piece(name, &piece)?
        {
            return Ok(code);
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Runs one piece of a script; `Some(code)` ends the script.
    fn run_script_piece(&mut self, name: Option<&str>, piece: &Piece) -> Result<Option<ExitCode>> {
        // A Ctrl-C that came between statements stops the script before the next one.
        if self.interrupts.take_pending() {
            self.report(
                name,
                piece,
                &PieceError::Statement(StatementError::Cancelled),
            );
            return Ok(Some(ExitCode::from(1)));
        }
        match self.run_piece(piece) {
            Ok(Flow::Continue) => Ok(None),
            Ok(Flow::Quit) => Ok(Some(ExitCode::SUCCESS)),
            Err(PieceError::Print(e)) => Err(e.into()),
            Err(error) => {
                self.report(name, piece, &error);
                Ok(Some(ExitCode::from(1)))
            }
        }
    }

    /// The interactive loop; returns at `\q` or Ctrl-D.
    pub fn run_interactive(&mut self, history: Option<PathBuf>) -> Result<ExitCode> {
        let mut editor = DefaultEditor::new().context("starting the line editor")?;
        if let Some(path) = &history {
            // A missing history file is normal on the first run.
            let _ = editor.load_history(path);
        }
        let mut buffer = StatementBuffer::new();
        let mut quit = false;
        while !quit {
            let prompt = if buffer.is_pending() {
                CONTINUATION_PROMPT
            } else {
                PROMPT
            };
            let line = match editor.readline(prompt) {
                Ok(line) => line,
                Err(ReadlineError::Interrupted) => {
                    buffer.clear();
                    continue;
                }
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(e).context("reading a line"),
            };
            for piece in buffer.push_line(&line) {
                let text = match &piece {
                    Piece::Statement { text, .. } => format!("{text};"),
                    Piece::Meta { text, .. } => text.clone(),
                };
                let _ = editor.add_history_entry(text);
                self.interrupts.take_pending();
                match self.run_piece(&piece) {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Quit) => quit = true,
                    Err(PieceError::Print(e)) => return Err(e.into()),
                    Err(error) => self.report(None, &piece, &error),
                }
                if quit {
                    break;
                }
            }
        }
        if let Some(path) = &history {
            editor
                .save_history(path)
                .with_context(|| format!("saving history to {}", path.display()))?;
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Runs a statement (cancellable by Ctrl-C, timed by `\timing`) or a meta-command, and prints
    /// its outcome.
    fn run_piece(&mut self, piece: &Piece) -> Result<Flow, PieceError> {
        let Shell {
            session,
            printer,
            runtime,
            interrupts,
        } = self;
        match piece {
            Piece::Meta { text, .. } => {
                let command = MetaCommand::parse(text)?;
                Ok(runtime.block_on(command.run(session, printer))?)
            }
            Piece::Statement { text, .. } => {
                let started = Instant::now();
                let outcome = runtime.block_on(async {
                    tokio::select! {
                        outcome = session.execute(text) => outcome,
                        () = interrupts.next() => Err(StatementError::Cancelled),
                    }
                })?;
                match outcome {
                    Outcome::Rows { schema, batches } => printer.query_result(&schema, &batches)?,
                    Outcome::Committed {
                        table,
                        version,
                        rows,
                    } => {
                        let noun = if rows == 1 { "row" } else { "rows" };
                        printer.info(&format!(
                            "committed {rows} {noun} to {table} as version {version}"
                        ))?
                    }
                    Outcome::Done => {}
                }
                printer.elapsed(started.elapsed());
                Ok(Flow::Continue)
            }
        }
    }

    /// Prints an error once on stderr as `sql: [script:line: ]message`, with a caret under the
    /// position when the error has one.
    fn report(&self, name: Option<&str>, piece: &Piece, error: &PieceError) {
        let (text, first_line) = match piece {
            Piece::Statement { text, line } | Piece::Meta { text, line } => (text, *line),
        };
        let position = match error {
            PieceError::Statement(e) => e.position(),
            _ => None,
        };
        let location = match (name, position) {
            (Some(name), Some(p)) => format!("{name}:{}: ", first_line + p.line - 1),
            (Some(name), None) => format!("{name}:{first_line}: "),
            (None, _) => String::new(),
        };
        eprintln!("sql: {location}{error}");
        if let Some(position) = position {
            eprint!("{}", caret(text, position));
        }
    }
}

/// The statement line at `position` with a `^` under its column.
fn caret(text: &str, position: Position) -> String {
    let Some(line) = text.lines().nth(position.line.saturating_sub(1)) else {
        return String::new();
    };
    let gutter = position.line.to_string();
    let pad = " ".repeat(gutter.len());
    let indent: String = line
        .chars()
        .take(position.column.saturating_sub(1))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    format!("{gutter} | {line}\n{pad} | {indent}^\n")
}

/// Ctrl-C as a stream of events that stays installed for the whole run.
struct Interrupts {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupts {
    fn install(runtime: &Runtime) -> io::Result<Interrupts> {
        let _guard = runtime.enter();
        #[cfg(unix)]
        {
            let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
            Ok(Interrupts { signal })
        }
        #[cfg(not(unix))]
        Ok(Interrupts {})
    }

    /// Waits for the next Ctrl-C.
    async fn next(&mut self) {
        #[cfg(unix)]
        self.signal.recv().await;
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }

    /// Whether a Ctrl-C arrived since the last call (consuming it).
    fn take_pending(&mut self) -> bool {
        let mut pending = false;
        #[cfg(unix)]
        while let Some(Some(())) = self.signal.recv().now_or_never() {
            pending = true;
        }
        pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carets_point_at_the_column() {
        assert_eq!(
            caret("SELECT FROM t", Position { line: 1, column: 8 }),
            "1 | SELECT FROM t\n  |        ^\n"
        );
        assert_eq!(
            caret("select 1,\n  x y", Position { line: 2, column: 5 }),
            "2 |   x y\n  |     ^\n"
        );
        assert_eq!(caret("x", Position { line: 3, column: 1 }), "");
    }
}
