//! Backslash meta-commands: `\d`, `\d NAME`, `\history NAME`, `\timing`, `\format`, `\?`, `\q`.
//! Their answers are ordinary result sets, printed in the current format like any query.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::TableReference;
use negopt_catalog::CatalogError;

use crate::error::StatementError;
use crate::format::Format;
use crate::printer::{PrintError, Printer, Timing};
use crate::session::{Session, TableState};

/// A parsed meta-command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaCommand {
    /// `\d`: every table with its latest version and row count.
    ListTables,
    /// `\d NAME`: a table's columns.
    Describe(String),
    /// `\history NAME`: a table's commits with time, operation and lineage.
    History(String),
    /// `\timing [on|off]`: print each statement's time (no argument toggles).
    Timing(Option<Timing>),
    /// `\format [NAME]`: set the result format (no argument shows it).
    Format(Option<Format>),
    /// `\?`: help.
    Help,
    /// `\q`: leave the shell.
    Quit,
}

/// What the shell does after a meta-command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next statement.
    Continue,
    /// Leave the shell.
    Quit,
}

/// Why a meta-command failed.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The line is not a meta-command this shell knows, or has wrong arguments.
    #[error("{0}\nhelp: \\? lists the meta-commands")]
    Usage(String),
    /// The command ran into a statement-level error (unknown table, damaged table, ...).
    #[error(transparent)]
    Statement(#[from] StatementError),
    /// Printing its answer failed.
    #[error(transparent)]
    Print(#[from] PrintError),
}

impl From<CatalogError> for MetaError {
    fn from(error: CatalogError) -> Self {
        MetaError::Statement(error.into())
    }
}

impl MetaCommand {
    /// Parses a line starting with `\` (a trailing `;` is ignored, as psql does).
    pub fn parse(line: &str) -> Result<MetaCommand, MetaError> {
        let line = line.trim().trim_end_matches(';');
        let mut words = line.split_whitespace();
        let command = words.next().unwrap_or_default();
        let argument = words.next();
        if let Some(extra) = words.next() {
            return Err(MetaError::Usage(format!(
                "{command}: unexpected argument {extra:?}"
            )));
        }
        let name = |what: &str| {
            argument
                .map(str::to_string)
                .ok_or_else(|| MetaError::Usage(format!("{command} needs a {what}")))
        };
        match command {
            "\\d" => Ok(argument.map_or(MetaCommand::ListTables, |a| {
                MetaCommand::Describe(a.to_string())
            })),
            "\\history" => Ok(MetaCommand::History(name("table name")?)),
            "\\timing" => match argument {
                None => Ok(MetaCommand::Timing(None)),
                Some("on") => Ok(MetaCommand::Timing(Some(Timing::On))),
                Some("off") => Ok(MetaCommand::Timing(Some(Timing::Off))),
                Some(other) => Err(MetaError::Usage(format!(
                    "\\timing takes on or off, got {other:?}"
                ))),
            },
            "\\format" => match argument {
                None => Ok(MetaCommand::Format(None)),
                Some(name) => name
                    .parse()
                    .map(|f| MetaCommand::Format(Some(f)))
                    .map_err(MetaError::Usage),
            },
            "\\?" | "\\h" | "\\help" => Ok(MetaCommand::Help),
            "\\q" | "\\quit" => Ok(MetaCommand::Quit),
            other => Err(MetaError::Usage(format!("unknown meta-command {other}"))),
        }
    }

    /// Runs the command.
    pub async fn run(&self, session: &Session, printer: &mut Printer) -> Result<Flow, MetaError> {
        match self {
            MetaCommand::ListTables => {
                let batch = list_tables(session).await?;
                printer.result(&batch.schema(), &[batch])?;
            }
            MetaCommand::Describe(name) => {
                let batch = describe(session, name).await?;
                printer.result(&batch.schema(), &[batch])?;
            }
            MetaCommand::History(name) => {
                let batch = history(session, name).await?;
                printer.result(&batch.schema(), &[batch])?;
            }
            MetaCommand::Timing(setting) => {
                printer.timing = setting.unwrap_or(match printer.timing {
                    Timing::On => Timing::Off,
                    Timing::Off => Timing::On,
                });
                let state = if printer.timing == Timing::On {
                    "on"
                } else {
                    "off"
                };
                printer.line(&format!("Timing is {state}."))?;
            }
            MetaCommand::Format(format) => {
                if let Some(format) = format {
                    printer.format = *format;
                }
                printer.line(&format!("Output format is {}.", printer.format))?;
            }
            MetaCommand::Help => printer.line(&crate::help::text())?,
            MetaCommand::Quit => return Ok(Flow::Quit),
        }
        Ok(Flow::Continue)
    }
}

/// A batch of the given utf8 / int64 columns.
fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
        .collect();
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    RecordBatch::try_new(schema, columns.into_iter().map(|(_, a)| a).collect())
        .expect("meta-command columns have equal lengths by construction")
}

/// `\d`: table, latest version, row count, and a note for damaged tables.
async fn list_tables(session: &Session) -> Result<RecordBatch, MetaError> {
    let mut names = Vec::new();
    let mut versions = Vec::new();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for (name, state) in session.tables() {
        names.push(name.clone());
        match state {
            TableState::Ready(version) => {
                versions.push(Some(*version as i64));
                rows.push(Some(row_count(session, name).await?));
                notes.push(String::new());
            }
            TableState::Damaged(reason) => {
                versions.push(None);
                rows.push(None);
                // The reason opens with `table "name" is damaged: `; the row already says which.
                let first_line = reason.lines().next().unwrap_or_default();
                let detail = first_line
                    .split_once(" is damaged: ")
                    .map_or(first_line, |(_, d)| d);
                notes.push(format!("damaged: {detail}"));
            }
        }
    }
    Ok(batch(vec![
        ("table", Arc::new(StringArray::from(names))),
        ("version", Arc::new(Int64Array::from(versions))),
        ("rows", Arc::new(Int64Array::from(rows))),
        ("note", Arc::new(StringArray::from(notes))),
    ]))
}

async fn row_count(session: &Session, name: &str) -> Result<i64, MetaError> {
    let error = |e: datafusion::error::DataFusionError| MetaError::Statement(e.into());
    let frame = session
        .context()
        .table(TableReference::bare(name))
        .await
        .map_err(error)?;
    Ok(frame.count().await.map_err(error)? as i64)
}

/// The state of a catalog table, or the error that names the tables there are.
fn catalog_table<'a>(session: &'a Session, name: &str) -> Result<&'a TableState, StatementError> {
    session
        .tables()
        .get(name)
        .ok_or_else(|| StatementError::UnknownTable {
            name: name.to_string(),
            existing: session.tables().keys().cloned().collect(),
            position: None,
        })
}

/// `\d NAME`: column, type, nullable.
async fn describe(session: &Session, name: &str) -> Result<RecordBatch, MetaError> {
    if let TableState::Damaged(reason) = catalog_table(session, name)? {
        return Err(StatementError::DamagedTable {
            name: name.to_string(),
            reason: reason.clone(),
        }
        .into());
    }
    let schema = session.catalog().schema(name).await?;
    let fields = schema.fields();
    Ok(batch(vec![
        (
            "column",
            Arc::new(StringArray::from_iter_values(
                fields.iter().map(|f| f.name().clone()),
            )),
        ),
        (
            "type",
            Arc::new(StringArray::from_iter_values(
                fields.iter().map(|f| type_name(f.data_type())),
            )),
        ),
        (
            "nullable",
            Arc::new(StringArray::from_iter_values(
                fields
                    .iter()
                    .map(|f| if f.is_nullable() { "yes" } else { "no" }),
            )),
        ),
    ]))
}

/// A type as SQL users know it (`Utf8`, `Int64`, `List(Utf8)`).
fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::List(f) | DataType::LargeList(f) => format!("List({})", type_name(f.data_type())),
        other => other.to_string(),
    }
}

/// `\history NAME`: version, time, operation, parameters, inputs (lineage).
async fn history(session: &Session, name: &str) -> Result<RecordBatch, MetaError> {
    catalog_table(session, name)?;
    let records = session.catalog().history(name).await?;
    let versions = Int64Array::from_iter_values(records.iter().map(|r| r.version as i64));
    let times = StringArray::from_iter_values(records.iter().map(|r| {
        r.timestamp
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }));
    let operations = StringArray::from_iter_values(records.iter().map(|r| match &r.commit {
        Some(commit) => commit.operation.clone(),
        None => r.delta_operation.clone(),
    }));
    let params = StringArray::from(
        records
            .iter()
            .map(|r| {
                r.commit
                    .as_ref()
                    .filter(|c| !c.params.is_null())
                    .map(|c| c.params.to_string())
            })
            .collect::<Vec<_>>(),
    );
    let inputs = StringArray::from_iter_values(records.iter().map(|r| {
        r.commit
            .iter()
            .flat_map(|c| &c.inputs)
            .map(|input| format!("{}@{}", input.table, input.version))
            .collect::<Vec<_>>()
            .join(", ")
    }));
    Ok(batch(vec![
        ("version", Arc::new(versions)),
        ("time", Arc::new(times)),
        ("operation", Arc::new(operations)),
        ("params", Arc::new(params)),
        ("inputs", Arc::new(inputs)),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_commands_parse_with_their_arguments() {
        assert_eq!(MetaCommand::parse("\\d").unwrap(), MetaCommand::ListTables);
        assert_eq!(
            MetaCommand::parse(" \\d raw_pairs; ").unwrap(),
            MetaCommand::Describe("raw_pairs".into())
        );
        assert_eq!(
            MetaCommand::parse("\\history t").unwrap(),
            MetaCommand::History("t".into())
        );
        assert_eq!(
            MetaCommand::parse("\\timing").unwrap(),
            MetaCommand::Timing(None)
        );
        assert_eq!(
            MetaCommand::parse("\\timing off").unwrap(),
            MetaCommand::Timing(Some(Timing::Off))
        );
        assert_eq!(
            MetaCommand::parse("\\format CSV").unwrap(),
            MetaCommand::Format(Some(Format::Csv))
        );
        assert_eq!(MetaCommand::parse("\\?").unwrap(), MetaCommand::Help);
        assert_eq!(MetaCommand::parse("\\q").unwrap(), MetaCommand::Quit);
    }

    #[test]
    fn bad_meta_commands_say_what_is_wrong() {
        let message = |line: &str| MetaCommand::parse(line).unwrap_err().to_string();
        assert!(message("\\x").starts_with("unknown meta-command \\x\nhelp: \\?"));
        assert!(message("\\history").starts_with("\\history needs a table name"));
        assert!(message("\\timing maybe").contains("on or off"));
        assert!(message("\\format xml").contains("table, csv, tsv, json, ndjson"));
        assert!(message("\\d a b").contains("unexpected argument \"b\""));
    }
}
