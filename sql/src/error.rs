//! Why a statement failed, classified so the shell can say it plainly: the user's SQL (syntax,
//! unknown table, refused write), the stored data (a damaged table), or the run (cancelled,
//! query or catalog error).

use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;
use negopt_catalog::CatalogError;

/// A place in a statement's text, 1-based; columns count characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line within the statement.
    pub line: usize,
    /// Column within that line.
    pub column: usize,
}

/// Why a statement failed.
#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    /// The text does not parse.
    #[error("syntax error{}: {message}", at(.position))]
    Syntax {
        /// The parser's message, without its location suffix.
        message: String,
        /// Where the parser stopped, when known.
        position: Option<Position>,
    },
    /// The statement names a table that is neither in the catalog nor in the session.
    #[error("unknown table {name:?}; tables in this catalog: {}", list_or_none(.existing))]
    UnknownTable {
        /// The name as written.
        name: String,
        /// The catalog's tables.
        existing: Vec<String>,
        /// Where the name is in the statement, when the planner said.
        position: Option<Position>,
    },
    /// The statement reads a table whose log could not be loaded when the shell started.
    #[error("table {name:?} is damaged and cannot be read: {reason}")]
    DamagedTable {
        /// The table.
        name: String,
        /// What the catalog said about it.
        reason: String,
    },
    /// A statement that would change the catalog, in a read-only shell.
    #[error("{statement} is refused: this shell is read-only\nhelp: {help}")]
    ReadOnly {
        /// What the statement is, e.g. `INSERT INTO raw_pairs`.
        statement: String,
        /// How to do it anyway.
        help: String,
    },
    /// A statement the shell does not run, even with `--write`.
    #[error("{statement} is not supported: {reason}")]
    Unsupported {
        /// What the statement is.
        statement: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// Ctrl-C (SIGINT) arrived while the statement ran.
    #[error("query cancelled")]
    Cancelled,
    /// Planning or running the query failed.
    #[error("{}", .0.strip_backtrace())]
    Query(Box<DataFusionError>),
    /// A catalog read or commit failed.
    #[error(transparent)]
    Catalog(Box<CatalogError>),
}

impl From<DataFusionError> for StatementError {
    fn from(error: DataFusionError) -> Self {
        StatementError::Query(Box::new(error))
    }
}

impl From<CatalogError> for StatementError {
    fn from(error: CatalogError) -> Self {
        StatementError::Catalog(Box::new(error))
    }
}

impl StatementError {
    /// Where in the statement the error is, if known.
    pub fn position(&self) -> Option<Position> {
        match self {
            StatementError::Syntax { position, .. } => *position,
            StatementError::UnknownTable { position, .. } => *position,
            _ => None,
        }
    }

    /// Classifies a DataFusion error on statement `sql`: a parser error becomes
    /// [`StatementError::Syntax`] with the position the parser reported (the end of the statement
    /// when it ran out of input); a missing table becomes [`StatementError::UnknownTable`].
    pub fn from_datafusion(
        error: DataFusionError,
        sql: &str,
        existing: &[String],
    ) -> StatementError {
        if let DataFusionError::SQL(parser_error, _) = error.find_root() {
            let text = match parser_error.as_ref() {
                ParserError::TokenizerError(text) | ParserError::ParserError(text) => text.clone(),
                ParserError::RecursionLimitExceeded => "statement nests too deeply".to_string(),
            };
            return match split_location(&text) {
                Some((message, position)) => StatementError::Syntax {
                    message,
                    position: Some(position),
                },
                // sqlparser gives no location when it runs out of input.
                None if text.ends_with("found: EOF") => StatementError::Syntax {
                    message: text,
                    position: Some(end_of(sql)),
                },
                None => StatementError::Syntax {
                    message: text,
                    position: None,
                },
            };
        }
        if let DataFusionError::Plan(message) = error.find_root()
            && let Some(name) = missing_table(message)
        {
            let position = error
                .diagnostic()
                .and_then(|d| d.span)
                .map(|span| Position {
                    line: span.start.line as usize,
                    column: span.start.column as usize,
                });
            return StatementError::UnknownTable {
                name: name.to_string(),
                existing: existing.to_vec(),
                position,
            };
        }
        error.into()
    }
}

/// The position just after the last character of `sql`.
fn end_of(sql: &str) -> Position {
    let last_line = sql.lines().last().unwrap_or_default();
    Position {
        line: sql.lines().count().max(1),
        column: last_line.chars().count() + 1,
    }
}

/// `" at line L, column C"`, or nothing without a position.
fn at(position: &Option<Position>) -> String {
    position
        .map(|p| format!(" at line {}, column {}", p.line, p.column))
        .unwrap_or_default()
}

/// Splits sqlparser's `"<message> at Line: 3, Column: 7"` into the message and the position.
fn split_location(text: &str) -> Option<(String, Position)> {
    let at = text.rfind(" at Line: ")?;
    let (line, column) = text[at + " at Line: ".len()..].split_once(", Column: ")?;
    let position = Position {
        line: line.trim().parse().ok()?,
        column: column.trim().parse().ok()?,
    };
    Some((text[..at].to_string(), position))
}

/// The table name in DataFusion's `table 'datafusion.public.name' not found`, without its
/// catalog and schema qualifiers when they are the defaults.
fn missing_table(message: &str) -> Option<&str> {
    let name = message
        .strip_prefix("table '")?
        .strip_suffix("' not found")?;
    Some(name.strip_prefix("datafusion.public.").unwrap_or(name))
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_locations_are_split_off() {
        let (message, position) =
            split_location("Expected: an expression, found: FROM at Line: 2, Column: 8").unwrap();
        assert_eq!(message, "Expected: an expression, found: FROM");
        assert_eq!(position, Position { line: 2, column: 8 });
        assert_eq!(split_location("no location here"), None);
    }

    #[test]
    fn running_out_of_input_points_past_the_end() {
        assert_eq!(end_of("select\n  x +"), Position { line: 2, column: 6 });
        assert_eq!(end_of(""), Position { line: 1, column: 1 });
    }

    #[test]
    fn missing_tables_lose_default_qualifiers() {
        assert_eq!(
            missing_table("table 'datafusion.public.nope' not found"),
            Some("nope")
        );
        assert_eq!(
            missing_table("table 'other.s.t' not found"),
            Some("other.s.t")
        );
        assert_eq!(missing_table("column 'x' not found"), None);
    }
}
