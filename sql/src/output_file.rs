//! `--output FILE`: a query result written to a file whose extension picks the format.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;

use crate::format::{self, Format, MaxRows};

/// The file formats `--output` writes, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// `.csv`
    Csv,
    /// `.json`: one array of objects.
    Json,
    /// `.ndjson` or `.jsonl`: one object a line.
    Ndjson,
    /// `.parquet`
    Parquet,
}

/// Errors of `--output`.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The extension names no format this shell writes.
    #[error("--output {path}: unknown extension; use .csv, .json, .ndjson, .jsonl or .parquet")]
    UnknownExtension {
        /// The path given.
        path: PathBuf,
    },
    /// A second query would overwrite the first one's result.
    #[error(
        "--output {path} takes the result of one query, and this is the second query that returns rows\nhelp: run one query, or drop --output and use --format"
    )]
    SecondResult {
        /// The output path.
        path: PathBuf,
    },
    /// Creating or writing the file failed.
    #[error("--output {path}: {source}")]
    Write {
        /// The output path.
        path: PathBuf,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The `--output` destination: a path and its format, written at most once.
#[derive(Debug)]
pub struct OutputFile {
    path: PathBuf,
    format: FileFormat,
    written: bool,
}

impl OutputFile {
    /// Checks the extension of `path`; nothing is created until a result arrives.
    pub fn new(path: &Path) -> Result<Self, OutputError> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let format = match extension.as_deref() {
            Some("csv") => FileFormat::Csv,
            Some("json") => FileFormat::Json,
            Some("ndjson" | "jsonl") => FileFormat::Ndjson,
            Some("parquet") => FileFormat::Parquet,
            _ => {
                return Err(OutputError::UnknownExtension {
                    path: path.to_path_buf(),
                });
            }
        };
        Ok(OutputFile {
            path: path.to_path_buf(),
            format,
            written: false,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a query's result to the file; a second result is an error, not an overwrite.
    pub fn write(
        &mut self,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<(), OutputError> {
        if self.written {
            return Err(OutputError::SecondResult {
                path: self.path.clone(),
            });
        }
        self.written = true;
        let failed = |source: Box<dyn std::error::Error + Send + Sync>| OutputError::Write {
            path: self.path.clone(),
            source,
        };
        let file = File::create(&self.path).map_err(|e| failed(e.into()))?;
        match self.format {
            FileFormat::Parquet => {
                let mut writer = ArrowWriter::try_new(file, schema.clone(), None)
                    .map_err(|e| failed(e.into()))?;
                for batch in batches {
                    writer.write(batch).map_err(|e| failed(e.into()))?;
                }
                writer.close().map_err(|e| failed(e.into()))?;
            }
            text => {
                let format = match text {
                    FileFormat::Csv => Format::Csv,
                    FileFormat::Json => Format::Json,
                    _ => Format::Ndjson,
                };
                let mut out = BufWriter::new(file);
                format::write_result(&mut out, format, schema, batches, MaxRows::Unlimited)
                    .map_err(|e| failed(e.into()))?;
                out.flush().map_err(|e| failed(e.into()))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_picks_the_format() {
        assert_eq!(
            OutputFile::new(Path::new("a.CSV")).unwrap().format,
            FileFormat::Csv
        );
        assert_eq!(
            OutputFile::new(Path::new("a.jsonl")).unwrap().format,
            FileFormat::Ndjson
        );
        assert_eq!(
            OutputFile::new(Path::new("a.parquet")).unwrap().format,
            FileFormat::Parquet
        );
        let err = OutputFile::new(Path::new("a.xlsx"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("a.xlsx") && err.contains(".parquet"), "{err}");
    }
}
