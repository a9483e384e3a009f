//! Cutting input into statements and meta-commands, line by line, the way `psql` does.
//!
//! - A line starting with `\` while no statement is pending is a meta-command.
//! - Otherwise lines accumulate until a `;` ends a statement; the cut uses sqlparser's tokenizer,
//!   so a `;` inside a string, quoted identifier or comment does not end anything.
//! - Input that does not tokenize yet (an open quote or comment) waits for more lines; at the end
//!   of a script, [`StatementBuffer::finish`] hands the rest over as it is.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

/// One unit of input to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A SQL statement, without its `;`, and the input line it starts on (1-based).
    Statement {
        /// The statement's text.
        text: String,
        /// Input line of its first character.
        line: usize,
    },
    /// A meta-command line such as `\d raw_pairs`, and its input line.
    Meta {
        /// The line, trimmed.
        text: String,
        /// Input line.
        line: usize,
    },
}

/// Accumulates input lines and hands out complete pieces.
#[derive(Debug, Default)]
pub struct StatementBuffer {
    /// Pending text of an unfinished statement.
    pending: String,
    /// Input line where `pending` starts.
    pending_line: usize,
    /// Lines pushed so far.
    lines_seen: usize,
}

impl StatementBuffer {
    /// An empty buffer at line 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a statement is pending (the shell shows its continuation prompt).
    pub fn is_pending(&self) -> bool {
        !self.pending.trim().is_empty()
    }

    /// Drops the pending statement (Ctrl-C at the prompt).
    pub fn clear(&mut self) {
        self.pending.clear();
    }

    /// Adds one input line (without its newline) and returns the pieces it completes.
    pub fn push_line(&mut self, line: &str) -> Vec<Piece> {
        self.lines_seen += 1;
        if !self.is_pending() {
            self.pending.clear();
            self.pending_line = self.lines_seen;
            if line.trim_start().starts_with('\\') {
                return vec![Piece::Meta {
                    text: line.trim().to_string(),
                    line: self.lines_seen,
                }];
            }
        }
        if !self.pending.is_empty() {
            self.pending.push('\n');
        }
        self.pending.push_str(line);
        self.cut_statements()
    }

    /// The rest of the input once it has ended: a last statement without `;`, or nothing.
    pub fn finish(&mut self) -> Option<Piece> {
        let text = std::mem::take(&mut self.pending);
        has_code(&text).then(|| Piece::Statement {
            text: text.trim().to_string(),
            line: self.pending_line,
        })
    }

    /// Cuts every statement that a `;` ends off the front of `pending`.
    fn cut_statements(&mut self) -> Vec<Piece> {
        let Ok(tokens) = Tokenizer::new(&GenericDialect {}, &self.pending).tokenize_with_location()
        else {
            // An open string or comment: the statement goes on in the next line.
            return Vec::new();
        };
        let line_starts: Vec<usize> = std::iter::once(0)
            .chain(self.pending.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let mut pieces = Vec::new();
        let mut start = 0;
        for token in tokens.iter().filter(|t| t.token == Token::SemiColon) {
            let end = byte_offset(
                &self.pending,
                &line_starts,
                token.span.start.line,
                token.span.start.column,
            );
            let text = &self.pending[start..end];
            if has_code(text) {
                let skipped = text.len() - text.trim_start().len();
                let line =
                    self.pending_line + self.pending[..start + skipped].matches('\n').count();
                pieces.push(Piece::Statement {
                    text: text.trim().to_string(),
                    line,
                });
            }
            start = end + 1;
        }
        if start > 0 {
            self.pending_line += self.pending[..start].matches('\n').count();
            self.pending.drain(..start);
        }
        pieces
    }
}

/// Byte offset of 1-based (line, column in characters) in `text`.
fn byte_offset(text: &str, line_starts: &[usize], line: u64, column: u64) -> usize {
    let line_start = line_starts[line as usize - 1];
    text[line_start..]
        .char_indices()
        .nth(column as usize - 1)
        .map_or(text.len(), |(i, _)| line_start + i)
}

/// Whether `text` holds anything but whitespace and comments (the tokenizer's `Whitespace`
/// tokens include comments).
fn has_code(text: &str) -> bool {
    match Tokenizer::new(&GenericDialect {}, text).tokenize() {
        Ok(tokens) => tokens
            .iter()
            .any(|t| !matches!(t, Token::Whitespace(_) | Token::EOF)),
        // Text that does not tokenize is surely not empty: let the parser report it.
        Err(_) => !text.trim().is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(text: &str, line: usize) -> Piece {
        Piece::Statement {
            text: text.to_string(),
            line,
        }
    }

    fn feed(input: &str) -> Vec<Piece> {
        let mut buffer = StatementBuffer::new();
        let mut pieces: Vec<Piece> = input.lines().flat_map(|l| buffer.push_line(l)).collect();
        pieces.extend(buffer.finish());
        pieces
    }

    #[test]
    fn statements_end_at_semicolons_outside_quotes_and_comments() {
        assert_eq!(
            feed("select ';' as a, \"x;y\" -- c;\n from t; select\n 2;"),
            vec![
                statement("select ';' as a, \"x;y\" -- c;\n from t", 1),
                statement("select\n 2", 2)
            ]
        );
        assert_eq!(
            feed("select 1; select 2"),
            vec![statement("select 1", 1), statement("select 2", 1)]
        );
        assert_eq!(
            feed("/* a;\n b */ select 1;"),
            vec![statement("/* a;\n b */ select 1", 1)]
        );
    }

    #[test]
    fn open_quotes_wait_for_more_lines() {
        let mut buffer = StatementBuffer::new();
        assert!(buffer.push_line("select 'a;").is_empty());
        assert!(buffer.is_pending());
        assert_eq!(
            buffer.push_line("b';"),
            vec![statement("select 'a;\nb'", 1)]
        );
        assert!(!buffer.is_pending());
    }

    #[test]
    fn meta_commands_only_between_statements() {
        assert_eq!(
            feed("\\d\nselect\n\\d x;\n  \\timing on"),
            vec![
                Piece::Meta {
                    text: "\\d".into(),
                    line: 1
                },
                statement("select\n\\d x", 2),
                Piece::Meta {
                    text: "\\timing on".into(),
                    line: 4
                },
            ]
        );
    }

    #[test]
    fn empty_statements_and_comments_are_skipped() {
        assert_eq!(feed(";;\n-- only a comment;\n"), vec![]);
        assert_eq!(feed("\n\nselect 3;"), vec![statement("select 3", 3)]);
    }
}
