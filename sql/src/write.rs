//! Which statements change the catalog, and how the allowed ones become catalog commits.
//!
//! The shell is read-only unless started with `--write`. A planned statement is classified:
//!
//! ```text
//!   LogicalPlan ─ classify ─► Change::None        run it (queries, EXPLAIN, SET, session views)
//!                          ├► Change::CreateTable  --write: run the SELECT, create + append → vN
//!                          ├► Change::Insert       --write: run the SELECT, append → vN
//!                          └► Change::Refused      never runs; says why and what to do instead
//! ```
//!
//! DataFusion plans `INSERT` and `CREATE TABLE AS` with their input already cast to the target
//! (or result) schema, so the shell only executes that input and hands the batches to the
//! catalog, which records the statement and the versions of the tables it read (lineage).

use std::collections::{BTreeMap, BTreeSet};

use datafusion::common::TableReference;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::{DdlStatement, LogicalPlan, WriteOp, dml::InsertOp};
use negopt_catalog::{Commit, VersionedTable};

/// What a planned statement would do to the catalog.
#[derive(Debug)]
pub(crate) enum Change<'a> {
    /// Nothing: a query, or a statement that only changes this session.
    None,
    /// `CREATE TABLE name AS SELECT ...` (or `CREATE TABLE name (columns)`).
    CreateTable {
        /// The new table's name.
        name: String,
        /// The rows to store.
        input: &'a LogicalPlan,
        /// `IF NOT EXISTS` was given.
        if_not_exists: bool,
    },
    /// `INSERT INTO name ...` appending to a catalog table.
    Insert {
        /// The target table.
        name: String,
        /// The rows to append, already in the table's column order and types.
        input: &'a LogicalPlan,
    },
    /// A change the shell never makes.
    Refused {
        /// What the statement is, e.g. `DELETE FROM raw_pairs`.
        statement: String,
        /// Why it is refused and what to do instead.
        reason: String,
    },
}

/// Whether the shell may change the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Statements that would change the catalog are refused (the default).
    ReadOnly,
    /// `CREATE TABLE AS` and `INSERT INTO` become catalog commits (`--write`).
    ReadWrite,
}

const ONLY_APPENDS: &str = "catalog tables only grow by commits; derive a new table with \
    CREATE TABLE name AS SELECT ... or append with INSERT INTO (both need --write)";

/// Classifies `plan`; `catalog_tables` tells catalog tables from session-only ones.
pub(crate) fn classify<'a>(plan: &'a LogicalPlan, catalog_tables: &[String]) -> Change<'a> {
    let in_catalog = |name: &TableReference| catalog_tables.iter().any(|t| t == name.table());
    match plan {
        LogicalPlan::Dml(dml) => match &dml.op {
            WriteOp::Insert(InsertOp::Append) if in_catalog(&dml.table_name) => {
                match bare_name(&dml.table_name) {
                    Some(name) => Change::Insert {
                        name,
                        input: dml.input.as_ref(),
                    },
                    None => refused(
                        format!("INSERT INTO {}", dml.table_name),
                        "write to catalog tables by their plain name",
                    ),
                }
            }
            WriteOp::Insert(InsertOp::Append) => refused(
                format!("INSERT INTO {}", dml.table_name),
                "only catalog tables take inserts; create one with CREATE TABLE name AS SELECT ...",
            ),
            op => refused(
                format!("{} on {}", op.name().to_uppercase(), dml.table_name),
                ONLY_APPENDS,
            ),
        },
        LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(create)) => {
            if create.or_replace {
                return refused(
                    format!("CREATE OR REPLACE TABLE {}", create.name),
                    "catalog tables keep every version; create a table under a new name",
                );
            }
            if create.temporary {
                return refused(
                    format!("CREATE TEMPORARY TABLE {}", create.name),
                    "use CREATE VIEW name AS ... for a session-only name",
                );
            }
            match bare_name(&create.name) {
                Some(name) => Change::CreateTable {
                    name,
                    input: create.input.as_ref(),
                    if_not_exists: create.if_not_exists,
                },
                None => refused(
                    format!("CREATE TABLE {}", create.name),
                    "catalog table names are plain names",
                ),
            }
        }
        LogicalPlan::Ddl(DdlStatement::DropTable(drop)) if in_catalog(&drop.name) => refused(
            format!("DROP TABLE {}", drop.name),
            "the catalog keeps every version of its tables; remove the table's directory by hand to drop it",
        ),
        LogicalPlan::Copy(copy) => refused(
            format!("COPY ... TO '{}'", copy.output_url),
            "the shell does not write files with COPY; use --output FILE (csv, json, ndjson, parquet)",
        ),
        _ => Change::None,
    }
}

fn refused<'a>(statement: String, reason: &str) -> Change<'a> {
    Change::Refused {
        statement,
        reason: reason.to_string(),
    }
}

/// The table name of an unqualified reference (or one in the default schema).
fn bare_name(name: &TableReference) -> Option<String> {
    match name {
        TableReference::Bare { table } => Some(table.to_string()),
        TableReference::Partial { schema, table } if schema.as_ref() == "public" => {
            Some(table.to_string())
        }
        _ => None,
    }
}

/// The commit for statement `sql`, whose input plan read `input`: the statement text as its
/// parameter and every catalog table version the plan scans (plain names at the version the
/// session registered, `table_at` at the version it names).
pub(crate) fn commit_for(
    sql: &str,
    input: &LogicalPlan,
    versions: &BTreeMap<String, u64>,
) -> Commit {
    let mut read = BTreeSet::new();
    // `apply_with_subqueries` also walks scalar subqueries (`WHERE x IN (SELECT ...)`).
    let _ = input.apply_with_subqueries(|node| {
        let LogicalPlan::TableScan(scan) = node else {
            return Ok(TreeNodeRecursion::Continue);
        };
        let provider = source_as_provider(&scan.source)?;
        let any: &dyn std::any::Any = provider.as_ref();
        if let Some(older) = any.downcast_ref::<VersionedTable>() {
            read.insert((older.table().to_string(), older.version()));
        } else if let Some(version) = versions.get(scan.table_name.table()) {
            read.insert((scan.table_name.table().to_string(), *version));
        }
        Ok(TreeNodeRecursion::Continue)
    });
    read.into_iter().fold(
        Commit::new("sql").with_params(serde_json::json!({ "statement": sql.trim() })),
        |commit, (table, version)| commit.with_input(table, version),
    )
}
