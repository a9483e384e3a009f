//! What a commit records (operation, parameters, lineage) and how reads name a version.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The provenance a writer attaches to a commit: stored in the Delta commit info under the key
/// `negopt`, so other Delta readers see it too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    /// What produced the data, e.g. `crawl` or `curate`.
    pub operation: String,
    /// The operation's parameters (a JSON object; `null` when there are none).
    pub params: serde_json::Value,
    /// The table versions the data was computed from.
    pub inputs: Vec<Input>,
}

impl Commit {
    /// A commit with no parameters and no inputs.
    pub fn new(operation: impl Into<String>) -> Self {
        Commit {
            operation: operation.into(),
            params: serde_json::Value::Null,
            inputs: Vec::new(),
        }
    }

    /// Sets the parameters.
    pub fn with_params(mut self, params: serde_json::Value) -> Self {
        self.params = params;
        self
    }

    /// Adds one input table version to the lineage.
    pub fn with_input(mut self, table: impl Into<String>, version: u64) -> Self {
        self.inputs.push(Input {
            table: table.into(),
            version,
        });
        self
    }
}

/// One input of a commit: a table and the version that was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// Table name.
    pub table: String,
    /// Version read.
    pub version: u64,
}

/// One entry of a table's history, as read back from its log.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitRecord {
    /// The table version this commit created.
    pub version: u64,
    /// When it was committed.
    pub timestamp: DateTime<Utc>,
    /// The Delta operation (`WRITE`, `MERGE`, `CREATE TABLE`, ...).
    pub delta_operation: String,
    /// The negopt provenance, absent on commits made by other tools.
    pub commit: Option<Commit>,
}

/// Which version of a table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// The newest version.
    Latest,
    /// An exact version number.
    Version(u64),
    /// The newest version committed at or before this time.
    Timestamp(DateTime<Utc>),
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Latest => write!(f, "latest"),
            At::Version(v) => write!(f, "version {v}"),
            At::Timestamp(t) => write!(f, "{}", t.to_rfc3339()),
        }
    }
}
