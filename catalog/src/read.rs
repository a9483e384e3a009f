//! Reading tables: loading a version, scanning its rows, its schema and its history.

use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use datafusion::catalog::TableProvider;
use datafusion::prelude::SessionContext;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};

use crate::catalog::Catalog;
use crate::commit::{At, CommitRecord};
use crate::error::{CatalogError, Result};
use crate::log;

impl Catalog {
    /// The version of `name` current at `t`: the newest committed at or before it.
    pub fn version_at(&self, name: &str, t: DateTime<Utc>) -> Result<u64> {
        let dir = self.existing_table_dir(name)?;
        resolve_time(name, &dir, &log::versions(name, &dir)?, t)
    }

    /// Loads table `name` at `at`, after checking its log for gaps.
    pub(crate) async fn load(&self, name: &str, at: At) -> Result<DeltaTable> {
        let dir = self.existing_table_dir(name)?;
        let versions = log::versions(name, &dir)?;
        let latest = *versions
            .last()
            .expect("log::versions never returns an empty list");
        let builder = DeltaTableBuilder::from_url(Catalog::table_url(&dir)?)
            .map_err(CatalogError::delta(name))?;
        let builder = match at {
            At::Latest => builder,
            At::Version(v) if v > latest || !versions.contains(&v) => {
                return Err(CatalogError::UnknownVersion {
                    table: name.into(),
                    version: v,
                    latest,
                });
            }
            At::Version(v) => builder.with_version(v),
            At::Timestamp(t) => builder.with_version(resolve_time(name, &dir, &versions, t)?),
        };
        builder.load().await.map_err(|e| match e {
            e @ (DeltaTableError::InvalidJsonLog { .. }
            | DeltaTableError::KernelError(_)
            | DeltaTableError::Kernel { .. }
            | DeltaTableError::MetadataError(_)
            | DeltaTableError::NotATable(_)
            | DeltaTableError::SerializeLogJson { .. }) => CatalogError::DamagedLog {
                table: name.into(),
                log_dir: dir.join("_delta_log"),
                detail: e.to_string(),
            },
            e => CatalogError::delta(name)(e),
        })
    }

    /// A DataFusion provider for table `name` at `at`, ready to scan in `ctx`.
    pub async fn provider(
        &self,
        name: &str,
        at: At,
        ctx: &SessionContext,
    ) -> Result<Arc<dyn TableProvider>> {
        let table = self.load(name, at).await?;
        table
            .update_datafusion_session(&ctx.state())
            .map_err(CatalogError::delta(name))?;
        table
            .table_provider()
            .await
            .map_err(CatalogError::datafusion(name))
    }

    /// All rows of table `name` at `at`, in the table's schema.
    pub async fn read(&self, name: &str, at: At) -> Result<Vec<RecordBatch>> {
        let ctx = SessionContext::new();
        let provider = self.provider(name, at, &ctx).await?;
        let batches = ctx
            .read_table(provider)
            .map_err(CatalogError::datafusion(name))?
            .collect()
            .await
            .map_err(CatalogError::datafusion(name))?;
        Ok(batches.into_iter().filter(|b| b.num_rows() > 0).collect())
    }

    /// The Arrow schema of table `name` (latest version), as DataFusion scans it.
    pub async fn schema(&self, name: &str) -> Result<SchemaRef> {
        let table = self.load(name, At::Latest).await?;
        let snapshot = table.snapshot().map_err(CatalogError::delta(name))?;
        Ok(snapshot.snapshot().arrow_schema())
    }

    /// The newest version of table `name`.
    pub async fn latest_version(&self, name: &str) -> Result<u64> {
        let dir = self.existing_table_dir(name)?;
        let versions = log::versions(name, &dir)?;
        Ok(*versions
            .last()
            .expect("log::versions never returns an empty list"))
    }

    /// Every commit of table `name`, oldest first.
    pub async fn history(&self, name: &str) -> Result<Vec<CommitRecord>> {
        let dir = self.existing_table_dir(name)?;
        log::versions(name, &dir)?
            .into_iter()
            .map(|v| log::commit_record(name, &dir, v))
            .collect()
    }
}

/// The newest version whose commit time (commitInfo `timestamp`, the time `history` shows) is at
/// or before `t`. Delta's own time travel uses log-file modification times, which drift from the
/// commit times and change when a catalog is copied; commit times travel with the data.
fn resolve_time(name: &str, dir: &Path, versions: &[u64], t: DateTime<Utc>) -> Result<u64> {
    for &v in versions.iter().rev() {
        if log::commit_record(name, dir, v)?.timestamp <= t {
            return Ok(v);
        }
    }
    let first = log::commit_record(name, dir, versions[0])?.timestamp;
    Err(CatalogError::NoVersionAtTime {
        table: name.into(),
        at: t.to_rfc3339(),
        detail: format!("its first version was committed at {}", first.to_rfc3339()),
    })
}
