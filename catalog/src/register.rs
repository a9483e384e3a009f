//! Making the catalog queryable from DataFusion.
//!
//! Naming: the latest version of each table is registered under its plain name (`raw_pairs`);
//! any version is reachable through the table function [`TABLE_AT_FUNCTION`]:
//!
//! ```sql
//! SELECT count(*) FROM table_at('raw_pairs', 3);                       -- version 3
//! SELECT count(*) FROM table_at('raw_pairs', '2026-11-29T12:00:00Z');  -- current at that time
//! ```
//!
//! A table function must return a provider synchronously while loading a Delta version is async,
//! so `table_at` returns a [`VersionedTable`] that knows the schema (tables keep one schema for life)
//! and loads the version when DataFusion scans it.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DataFusionError, ScalarValue, plan_err};
use datafusion::datasource::TableType;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

use crate::catalog::Catalog;
use crate::commit::At;
use crate::error::{CatalogError, Result};

/// Name of the SQL table function that reads an older version: `table_at('name', version | 'rfc3339')`.
pub const TABLE_AT_FUNCTION: &str = "table_at";

/// What [`Catalog::register_all`] registered, and what it could not.
#[derive(Debug, Default)]
pub struct Registered {
    /// Each registered table's latest version, by name.
    pub tables: BTreeMap<String, u64>,
    /// Each table that could not be loaded, with the error; left unregistered, so that one
    /// damaged table does not take the healthy ones down with it.
    pub damaged: BTreeMap<String, CatalogError>,
}

impl Catalog {
    /// Registers every table's latest version under its name, and the `table_at` function, in
    /// `ctx`. A table whose log cannot be loaded is left out and reported in
    /// [`Registered::damaged`]; `table_at` on it fails with the same reason.
    pub async fn register_all(&self, ctx: &SessionContext) -> Result<Registered> {
        let mut registered = Registered::default();
        let mut schemas = BTreeMap::new();
        for name in self.table_names()? {
            let loaded = match self.provider(&name, At::Latest, ctx).await {
                Ok(provider) => self.latest_version(&name).await.map(|v| (provider, v)),
                Err(e) => Err(e),
            };
            let (provider, latest) = match loaded {
                Ok(loaded) => loaded,
                Err(e) => {
                    registered.damaged.insert(name, e);
                    continue;
                }
            };
            schemas.insert(name.clone(), (provider.schema(), latest));
            ctx.deregister_table(name.as_str())
                .map_err(CatalogError::datafusion(&name))?;
            ctx.register_table(name.as_str(), provider)
                .map_err(CatalogError::datafusion(&name))?;
            registered.tables.insert(name, latest);
        }
        ctx.register_udtf(
            TABLE_AT_FUNCTION,
            Arc::new(TableAt {
                catalog: self.clone(),
                tables: schemas,
                damaged: registered
                    .damaged
                    .iter()
                    .map(|(name, e)| (name.clone(), e.to_string()))
                    .collect(),
            }),
        );
        Ok(registered)
    }
}

/// The `table_at` table function; knows each table's schema and latest version at registration.
#[derive(Debug)]
struct TableAt {
    catalog: Catalog,
    tables: BTreeMap<String, (SchemaRef, u64)>,
    /// Tables left out at registration, with why.
    damaged: BTreeMap<String, String>,
}

impl TableFunctionImpl for TableAt {
    fn call_with_args(
        &self,
        args: TableFunctionArgs,
    ) -> datafusion::common::Result<Arc<dyn TableProvider>> {
        let usage =
            "usage: table_at('table', version) or table_at('table', 'YYYY-MM-DDTHH:MM:SSZ')";
        let (name, at) = match args.exprs() {
            [
                Expr::Literal(ScalarValue::Utf8(Some(name)), _),
                Expr::Literal(at, _),
            ] => (name, at),
            _ => return plan_err!("{usage}"),
        };
        if let Some(reason) = self.damaged.get(name) {
            return plan_err!("{reason}");
        }
        let Some((schema, latest)) = self.tables.get(name) else {
            let existing: Vec<&str> = self.tables.keys().map(String::as_str).collect();
            return plan_err!(
                "unknown table {name:?}; tables in this catalog: {}",
                existing.join(", ")
            );
        };
        let version = match at {
            ScalarValue::Int64(Some(v)) if *v >= 0 && (*v as u64) <= *latest => *v as u64,
            ScalarValue::Int64(Some(v)) => {
                return plan_err!(
                    "table {name:?} has no version {v}; its versions are 0..={latest}"
                );
            }
            ScalarValue::Utf8(Some(text)) => match DateTime::parse_from_rfc3339(text) {
                // Resolved now, so the plan (and the lineage of a write) names the version.
                Ok(t) => self
                    .catalog
                    .version_at(name, t.with_timezone(&Utc))
                    .map_err(|e| DataFusionError::Plan(e.to_string()))?,
                Err(e) => {
                    return plan_err!(
                        "table_at: {text:?} is not an RFC 3339 timestamp ({e}); {usage}"
                    );
                }
            },
            other => return plan_err!("table_at: unsupported version argument {other}; {usage}"),
        };
        Ok(Arc::new(VersionedTable {
            catalog: self.catalog.clone(),
            name: name.clone(),
            version,
            schema: schema.clone(),
        }))
    }
}

/// One table at one version (what `table_at` returns), loaded when scanned.
#[derive(Debug)]
pub struct VersionedTable {
    catalog: Catalog,
    name: String,
    version: u64,
    schema: SchemaRef,
}

impl VersionedTable {
    /// The catalog table this reads.
    pub fn table(&self) -> &str {
        &self.name
    }

    /// The version this reads (a timestamp argument is resolved when the plan is built).
    pub fn version(&self) -> u64 {
        self.version
    }
}

#[async_trait]
impl TableProvider for VersionedTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        let external = |e: crate::CatalogError| DataFusionError::External(Box::new(e));
        let table = self
            .catalog
            .load(&self.name, At::Version(self.version))
            .await
            .map_err(external)?;
        table
            .update_datafusion_session(state)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let provider = table.table_provider().await?;
        provider.scan(state, projection, filters, limit).await
    }
}
