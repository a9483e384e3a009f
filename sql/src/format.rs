//! Output formats for query results: an ASCII table for people, CSV/TSV/JSON/NDJSON for programs.
//!
//! Conventions, the same for every result (queries and meta-commands alike):
//! - `table` writes a boxed table (NULL shown as `NULL`) and at most `--maxrows` rows; the other
//!   formats write every row and nothing but the data, so their output can be piped.
//! - `csv` and `tsv` start with a header line, also for an empty result; nested values (lists,
//!   structs, maps) are written in their display form, e.g. `[blurry, lowres]`; NULL and the
//!   empty string are both an empty field (arrow's CSV writer, as in `datafusion-cli`).
//! - `json` is one array of objects, `ndjson` one object a line; both write NULL as `null`.

use std::fmt;
use std::io::Write;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use arrow::util::pretty::pretty_format_batches_with_options;

/// How a result is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A boxed ASCII table.
    Table,
    /// Comma-separated values with a header line.
    Csv,
    /// Tab-separated values with a header line.
    Tsv,
    /// One JSON array of row objects.
    Json,
    /// One JSON object a line.
    Ndjson,
}

impl Format {
    /// The formats' names, as `\format` and `--format` accept them.
    pub const NAMES: &'static str = "table, csv, tsv, json, ndjson";
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <Format as clap::ValueEnum>::from_str(s, true)
            .map_err(|_| format!("unknown format {s:?}; formats: {}", Format::NAMES))
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Format::Table => "table",
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
        };
        f.write_str(name)
    }
}

/// The most rows the table format shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxRows {
    /// Show at most this many rows.
    Limit(usize),
    /// Show every row.
    Unlimited,
}

impl FromStr for MaxRows {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("inf") {
            return Ok(MaxRows::Unlimited);
        }
        s.parse::<usize>()
            .map(MaxRows::Limit)
            .map_err(|_| format!("--maxrows takes a number of rows or `inf`, got {s:?}"))
    }
}

/// Writes `batches` (with `schema`, which also gives the header of an empty result) in `format`.
/// Returns how many rows were written, which the table format caps at `maxrows`.
pub fn write_result(
    out: &mut dyn Write,
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    maxrows: MaxRows,
) -> Result<usize, ArrowError> {
    match format {
        Format::Table => write_table(out, schema, batches, maxrows),
        Format::Csv => write_delimited(out, schema, batches, b','),
        Format::Tsv => write_delimited(out, schema, batches, b'\t'),
        Format::Json => write_json_array(out, batches),
        Format::Ndjson => write_ndjson(out, batches),
    }
}

/// Number of rows in `batches`.
pub fn row_count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

fn write_table(
    out: &mut dyn Write,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    maxrows: MaxRows,
) -> Result<usize, ArrowError> {
    let shown = match maxrows {
        MaxRows::Limit(limit) => first_rows(batches, limit),
        MaxRows::Unlimited => batches.to_vec(),
    };
    let options = FormatOptions::default()
        .with_display_error(true)
        .with_null("NULL");
    let table = if shown.is_empty() {
        // arrow prints nothing at all for no batches; an empty batch still gives the header.
        pretty_format_batches_with_options(&[RecordBatch::new_empty(schema.clone())], &options)?
    } else {
        pretty_format_batches_with_options(&shown, &options)?
    };
    writeln!(out, "{table}")?;
    Ok(row_count(&shown))
}

/// The first `limit` rows of `batches`, slicing the batch that crosses the limit.
fn first_rows(batches: &[RecordBatch], limit: usize) -> Vec<RecordBatch> {
    let mut left = limit;
    let mut shown = Vec::new();
    for batch in batches {
        if left == 0 {
            break;
        }
        let take = left.min(batch.num_rows());
        shown.push(batch.slice(0, take));
        left -= take;
    }
    shown
}

fn write_delimited(
    out: &mut dyn Write,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    delimiter: u8,
) -> Result<usize, ArrowError> {
    let mut writer = arrow::csv::WriterBuilder::new()
        .with_header(true)
        .with_delimiter(delimiter)
        .build(out);
    let flat_schema = flat_schema(schema);
    // The writer emits its header with the first batch, so an empty result gets an empty batch.
    writer.write(&RecordBatch::new_empty(flat_schema))?;
    for batch in batches {
        writer.write(&flatten_nested(batch)?)?;
    }
    Ok(row_count(batches))
}

fn write_json_array(out: &mut dyn Write, batches: &[RecordBatch]) -> Result<usize, ArrowError> {
    let mut writer = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::JsonArray>(&mut *out);
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    writeln!(out)?;
    Ok(row_count(batches))
}

fn write_ndjson(out: &mut dyn Write, batches: &[RecordBatch]) -> Result<usize, ArrowError> {
    let mut writer = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::LineDelimited>(&mut *out);
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    Ok(row_count(batches))
}

/// Whether the CSV writer cannot write this type and it must go out in display form.
fn is_nested(data_type: &DataType) -> bool {
    data_type.is_nested() || matches!(data_type, DataType::Map(..))
}

/// `schema` with every nested column turned into a string column.
fn flat_schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if is_nested(f.data_type()) {
                Field::new(f.name(), DataType::Utf8, true)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// `batch` with every nested column replaced by its display strings (CSV has no nested values).
fn flatten_nested(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| is_nested(f.data_type()))
    {
        return Ok(batch.clone());
    }
    let options = FormatOptions::default();
    let columns = batch
        .columns()
        .iter()
        .map(|column| {
            if !is_nested(column.data_type()) {
                return Ok(column.clone());
            }
            let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
            let mut strings = StringBuilder::new();
            for row in 0..column.len() {
                if column.is_null(row) {
                    strings.append_null();
                } else {
                    strings.append_value(formatter.value(row).to_string());
                }
            }
            Ok(Arc::new(strings.finish()) as ArrayRef)
        })
        .collect::<Result<Vec<_>, ArrowError>>()?;
    RecordBatch::try_new(flat_schema(&batch.schema()), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, ListBuilder, StringArray};

    fn batch() -> RecordBatch {
        let mut tags = ListBuilder::new(StringBuilder::new());
        tags.values().append_value("blurry");
        tags.values().append_value("lowres");
        tags.append(true);
        tags.append(false);
        RecordBatch::try_from_iter(vec![
            (
                "n",
                Arc::new(Int64Array::from(vec![Some(1), None])) as ArrayRef,
            ),
            (
                "s",
                Arc::new(StringArray::from(vec![Some("a,b"), Some("")])) as ArrayRef,
            ),
            ("tags", Arc::new(tags.finish()) as ArrayRef),
        ])
        .unwrap()
    }

    fn render(format: Format, maxrows: MaxRows) -> String {
        let batch = batch();
        let mut out = Vec::new();
        write_result(&mut out, format, &batch.schema(), &[batch], maxrows).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_format_renders_nulls_empties_and_lists() {
        assert_eq!(
            render(Format::Table, MaxRows::Unlimited),
            "+------+-----+------------------+\n\
             | n    | s   | tags             |\n\
             +------+-----+------------------+\n\
             | 1    | a,b | [blurry, lowres] |\n\
             | NULL |     | NULL             |\n\
             +------+-----+------------------+\n"
        );
        assert_eq!(
            render(Format::Csv, MaxRows::Unlimited),
            "n,s,tags\n1,\"a,b\",\"[blurry, lowres]\"\n,,\n"
        );
        assert_eq!(
            render(Format::Tsv, MaxRows::Unlimited),
            "n\ts\ttags\n1\ta,b\t[blurry, lowres]\n\t\t\n"
        );
        assert_eq!(
            render(Format::Json, MaxRows::Unlimited),
            "[{\"n\":1,\"s\":\"a,b\",\"tags\":[\"blurry\",\"lowres\"]},{\"n\":null,\"s\":\"\",\"tags\":null}]\n"
        );
        assert_eq!(
            render(Format::Ndjson, MaxRows::Unlimited),
            "{\"n\":1,\"s\":\"a,b\",\"tags\":[\"blurry\",\"lowres\"]}\n{\"n\":null,\"s\":\"\",\"tags\":null}\n"
        );
    }

    #[test]
    fn maxrows_caps_only_the_table() {
        assert_eq!(render(Format::Table, MaxRows::Limit(1)).lines().count(), 5);
        assert_eq!(render(Format::Csv, MaxRows::Limit(1)).lines().count(), 3);
    }

    #[test]
    fn an_empty_result_keeps_its_header() {
        let schema = batch().schema();
        let mut out = Vec::new();
        write_result(&mut out, Format::Csv, &schema, &[], MaxRows::Unlimited).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "n,s,tags\n");
        let mut out = Vec::new();
        write_result(&mut out, Format::Json, &schema, &[], MaxRows::Unlimited).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "[]\n");
    }

    #[test]
    fn format_and_maxrows_parse() {
        assert_eq!("NDJSON".parse::<Format>().unwrap(), Format::Ndjson);
        assert!(
            "xml"
                .parse::<Format>()
                .unwrap_err()
                .contains("table, csv, tsv, json, ndjson")
        );
        assert_eq!("inf".parse::<MaxRows>().unwrap(), MaxRows::Unlimited);
        assert_eq!("7".parse::<MaxRows>().unwrap(), MaxRows::Limit(7));
        assert!("-1".parse::<MaxRows>().is_err());
    }
}
