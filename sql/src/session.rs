//! A DataFusion session over the catalog: every table registered, the domain UDFs, and statement
//! execution with the read-only gate.
//!
//! ```text
//!   text ─ parse ─► Statement ─ plan ─► LogicalPlan ─ write::classify ─┬─ run → Outcome::Rows / Done
//!    (syntax error          (unknown or damaged table)                 └─ commit → Outcome::Committed
//!     with position)
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use negopt_catalog::{Catalog, CatalogError};

use crate::error::StatementError;
use crate::write::{self, Access, Change};

/// What a statement produced.
#[derive(Debug)]
pub enum Outcome {
    /// A result set (possibly empty).
    Rows {
        /// Its schema, which also gives the header of an empty result.
        schema: SchemaRef,
        /// Its rows.
        batches: Vec<RecordBatch>,
    },
    /// A catalog commit made by `CREATE TABLE AS` or `INSERT INTO` under `--write`.
    Committed {
        /// The table written.
        table: String,
        /// The version the commit created.
        version: u64,
        /// How many rows it wrote.
        rows: usize,
    },
    /// A statement without rows (`SET`, `CREATE VIEW`, ...).
    Done,
}

/// The state of a catalog table in this session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableState {
    /// Registered at this (latest) version.
    Ready(u64),
    /// Not registered: its log could not be loaded, for this reason.
    Damaged(String),
}

/// A SQL session over one catalog.
pub struct Session {
    ctx: SessionContext,
    catalog: Catalog,
    access: Access,
    tables: BTreeMap<String, TableState>,
}

impl Session {
    /// A session with every table of `catalog` registered (see [`Session::refresh`]), the domain
    /// UDFs and `information_schema`.
    pub async fn open(catalog: Catalog, access: Access) -> Result<Session, CatalogError> {
        let config = SessionConfig::new().with_information_schema(true);
        let ctx = SessionContext::new_with_config(config);
        crate::udf::register(&ctx);
        let mut session = Session {
            ctx,
            catalog,
            access,
            tables: BTreeMap::new(),
        };
        session.refresh().await?;
        Ok(session)
    }

    /// Registers the latest version of every table, and `table_at` for older versions. A table
    /// whose log is damaged is left out and remembered, so the shell still starts and a query
    /// that reads it says what is wrong.
    pub async fn refresh(&mut self) -> Result<(), CatalogError> {
        let registered = self.catalog.register_all(&self.ctx).await?;
        let ready = registered
            .tables
            .into_iter()
            .map(|(name, version)| (name, TableState::Ready(version)));
        let damaged = registered.damaged.into_iter().map(|(name, e)| {
            tracing::debug!(table = %name, error = %e, "table not registered");
            (name, TableState::Damaged(e.to_string()))
        });
        self.tables = ready.chain(damaged).collect();
        Ok(())
    }

    /// The DataFusion context (for meta-commands and benchmarks).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The catalog this session reads.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Every catalog table and its state, by name.
    pub fn tables(&self) -> &BTreeMap<String, TableState> {
        &self.tables
    }

    /// Parses, plans and runs one statement (without its `;`).
    pub async fn execute(&mut self, sql: &str) -> Result<Outcome, StatementError> {
        let state = self.ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        let statement = state
            .sql_to_statement(sql, &dialect)
            .map_err(|e| self.classify(e, sql))?;
        let plan = state
            .statement_to_plan(statement)
            .await
            .map_err(|e| self.classify(e, sql))?;
        let names: Vec<String> = self.tables.keys().cloned().collect();
        match write::classify(&plan, &names) {
            Change::None => self.run(plan, sql).await,
            Change::Refused { statement, reason } => {
                Err(StatementError::Unsupported { statement, reason })
            }
            Change::CreateTable { name, .. } | Change::Insert { name, .. }
                if self.access == Access::ReadOnly =>
            {
                let verb = if matches!(plan, LogicalPlan::Dml(_)) {
                    "INSERT INTO"
                } else {
                    "CREATE TABLE"
                };
                Err(StatementError::ReadOnly {
                    statement: format!("{verb} {name}"),
                    help: "start the shell with --write to commit it as a new catalog version"
                        .into(),
                })
            }
            Change::CreateTable {
                name,
                if_not_exists: true,
                ..
            } if self.tables.contains_key(&name) => Ok(Outcome::Done),
            Change::CreateTable { name, input, .. } => {
                let batches = self.collect(input, sql).await?;
                let schema = Arc::new(input.schema().as_arrow().clone());
                self.catalog.create_table(&name, schema).await?;
                self.commit(sql, &name, input, batches).await
            }
            Change::Insert { name, input } => {
                let batches = self.collect(input, sql).await?;
                let target = self.catalog.schema(&name).await?;
                let batches = batches
                    .iter()
                    .map(|batch| cast_to(batch, &target))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| StatementError::from(DataFusionError::from(e)))?;
                self.commit(sql, &name, input, batches).await
            }
        }
    }

    /// Runs a plan that changes nothing in the catalog.
    async fn run(&self, plan: LogicalPlan, sql: &str) -> Result<Outcome, StatementError> {
        let has_rows = !matches!(plan, LogicalPlan::Ddl(_) | LogicalPlan::Statement(_));
        let frame = self
            .ctx
            .execute_logical_plan(plan)
            .await
            .map_err(|e| self.classify(e, sql))?;
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await.map_err(|e| self.classify(e, sql))?;
        Ok(if has_rows {
            Outcome::Rows { schema, batches }
        } else {
            Outcome::Done
        })
    }

    async fn collect(
        &self,
        plan: &LogicalPlan,
        sql: &str,
    ) -> Result<Vec<RecordBatch>, StatementError> {
        let frame = self
            .ctx
            .execute_logical_plan(plan.clone())
            .await
            .map_err(|e| self.classify(e, sql))?;
        frame.collect().await.map_err(|e| self.classify(e, sql))
    }

    /// Appends `batches` to `table` as one commit, then re-registers the catalog so the session
    /// (and `table_at`) see the new version.
    async fn commit(
        &mut self,
        sql: &str,
        table: &str,
        input: &LogicalPlan,
        batches: Vec<RecordBatch>,
    ) -> Result<Outcome, StatementError> {
        let versions = self
            .tables
            .iter()
            .filter_map(|(name, state)| match state {
                TableState::Ready(v) => Some((name.clone(), *v)),
                TableState::Damaged(_) => None,
            })
            .collect();
        let commit = write::commit_for(sql, input, &versions);
        let rows = crate::format::row_count(&batches);
        let version = self.catalog.append(table, batches, commit).await?;
        self.refresh().await?;
        Ok(Outcome::Committed {
            table: table.to_string(),
            version,
            rows,
        })
    }

    /// Turns a DataFusion error on `sql` into a [`StatementError`], naming damaged tables as such.
    fn classify(&self, error: DataFusionError, sql: &str) -> StatementError {
        let names: Vec<String> = self.tables.keys().cloned().collect();
        let error = StatementError::from_datafusion(error, sql, &names);
        if let StatementError::UnknownTable { name, .. } = &error
            && let Some(TableState::Damaged(reason)) = self.tables.get(name)
        {
            return StatementError::DamagedTable {
                name: name.clone(),
                reason: reason.clone(),
            };
        }
        error
    }
}

/// `batch` with each column cast to the type of the same column in `target`. The planner has
/// already matched the columns; this only settles representation differences (e.g. a `Utf8View`
/// literal into a `Utf8` column) so the catalog sees exactly its own schema.
fn cast_to(
    batch: &RecordBatch,
    target: &SchemaRef,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(target.fields())
        .map(|(column, field)| arrow::compute::cast(column, field.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(target.clone(), columns)
}
