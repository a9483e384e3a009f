//! Catalog errors, classified by who is at fault: the caller's input (unknown table, version or
//! schema), the stored data (damaged log, not a catalog), or the storage layer underneath.

use std::path::PathBuf;

/// Result of catalog operations.
pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// What went wrong in a catalog operation.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The directory is missing, is not a directory, or holds something that is not a catalog.
    #[error("{path} is not a negopt catalog: {reason}\nhelp: {help}")]
    NotACatalog {
        /// The directory given as the catalog root.
        path: PathBuf,
        /// Why it is not a catalog.
        reason: String,
        /// What to do about it.
        help: String,
    },
    /// A table name that the catalog does not accept.
    #[error(
        "invalid table name {name:?}: names are 1-63 characters of a-z, 0-9 and _, starting with a letter"
    )]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// No table of that name exists.
    #[error("unknown table {name:?}; tables in this catalog: {}", list_or_none(.existing))]
    UnknownTable {
        /// The requested name.
        name: String,
        /// The tables that do exist.
        existing: Vec<String>,
    },
    /// A table of that name exists already.
    #[error("table {name:?} already exists")]
    TableExists {
        /// The table's name.
        name: String,
    },
    /// The table has no such version.
    #[error("table {table:?} has no version {version}; its versions are 0..={latest}")]
    UnknownVersion {
        /// The table.
        table: String,
        /// The requested version.
        version: u64,
        /// The newest version.
        latest: u64,
    },
    /// No version of the table existed at the requested time.
    #[error("table {table:?} has no version at {at}: {detail}")]
    NoVersionAtTime {
        /// The table.
        table: String,
        /// The requested time (RFC 3339).
        at: String,
        /// What the storage layer said.
        detail: String,
    },
    /// Batches whose schema differs from the table's.
    #[error(
        "schema of the batches does not match table {table:?}: {difference}\n  table:   {expected}\n  batches: {found}"
    )]
    SchemaMismatch {
        /// The table.
        table: String,
        /// The first difference found.
        difference: String,
        /// The table's columns.
        expected: String,
        /// The batches' columns.
        found: String,
    },
    /// The table's transaction log is missing pieces or cannot be parsed.
    #[error(
        "table {table:?} is damaged: {detail}\nhelp: the log lives in {log_dir}; restore the missing or corrupt file from a backup"
    )]
    DamagedLog {
        /// The table.
        table: String,
        /// The log directory.
        log_dir: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Input that the operation cannot use (e.g. an upsert key that is not a column).
    #[error("invalid input for table {table:?}: {detail}")]
    InvalidInput {
        /// The table.
        table: String,
        /// What is wrong.
        detail: String,
    },
    /// Another writer committed a conflicting change and retries ran out.
    #[error(
        "commit to table {table:?} conflicted with a concurrent writer: {detail}\nhelp: retry the operation"
    )]
    Conflict {
        /// The table.
        table: String,
        /// What the transaction layer said.
        detail: String,
    },
    /// An error from the Delta Lake layer.
    #[error("delta lake error on table {table:?}: {source}")]
    Delta {
        /// The table.
        table: String,
        /// The underlying error.
        #[source]
        source: deltalake::DeltaTableError,
    },
    /// An error from DataFusion while scanning or merging.
    #[error("query error on table {table:?}: {source}")]
    DataFusion {
        /// The table.
        table: String,
        /// The underlying error.
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// File-system I/O on the catalog root.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The path being accessed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_string()
    } else {
        names.join(", ")
    }
}

impl CatalogError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| CatalogError::Io { path, source }
    }

    pub(crate) fn delta(table: &str) -> impl FnOnce(deltalake::DeltaTableError) -> Self + '_ {
        move |source| match source {
            deltalake::DeltaTableError::Transaction { source } => CatalogError::Conflict {
                table: table.to_string(),
                detail: source.to_string(),
            },
            source => CatalogError::Delta {
                table: table.to_string(),
                source,
            },
        }
    }

    pub(crate) fn datafusion(
        table: &str,
    ) -> impl FnOnce(datafusion::error::DataFusionError) -> Self + '_ {
        move |source| CatalogError::DataFusion {
            table: table.to_string(),
            source,
        }
    }
}
