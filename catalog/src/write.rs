//! Writing tables: create, append, overwrite and upsert, each one Delta commit carrying the
//! negopt provenance.
//!
//! ```text
//!  batches ──schema check──► parquet data files ──► one atomic _delta_log/N.json ──► version N
//!                             (invisible until)        (put-if-absent; a concurrent
//!                                                       writer retries at N+1)
//! ```

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use datafusion::prelude::{SessionContext, col};
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder};

use crate::catalog::Catalog;
use crate::commit::{At, Commit};
use crate::error::{CatalogError, Result};
use crate::log::PROVENANCE_KEY;

/// How a write treats the rows already in the table.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Append,
    Overwrite,
}

impl Catalog {
    /// Creates an empty table with `schema` as version 0.
    pub async fn create_table(&self, name: &str, schema: SchemaRef) -> Result<u64> {
        let dir = self.table_dir(name)?;
        if dir.join("_delta_log").is_dir() {
            return Err(CatalogError::TableExists {
                name: name.to_string(),
            });
        }
        std::fs::create_dir_all(&dir).map_err(CatalogError::io(&dir))?;
        // Build without loading: loading a table that has no log yet makes the Delta kernel log an
        // error although nothing is wrong.
        let table = DeltaTableBuilder::from_url(Catalog::table_url(&dir)?)
            .and_then(|b| b.build())
            .map_err(CatalogError::delta(name))?;
        let table = table
            .write(vec![RecordBatch::new_empty(schema)])
            .with_save_mode(SaveMode::ErrorIfExists)
            .with_table_name(name)
            .with_commit_properties(properties(&Commit::new("create")))
            .await
            .map_err(CatalogError::delta(name))?;
        Ok(table.version().unwrap_or(0))
    }

    /// Creates table `name` if it is missing; otherwise checks that its schema is `schema`.
    pub async fn ensure_table(&self, name: &str, schema: SchemaRef) -> Result<()> {
        if self.table_dir(name)?.join("_delta_log").is_dir() {
            let table = self.load(name, At::Latest).await?;
            check_schema(name, &table, &schema)
        } else {
            self.create_table(name, schema).await.map(|_| ())
        }
    }

    /// Appends `batches` as one commit; returns the new version.
    pub async fn append(
        &self,
        name: &str,
        batches: Vec<RecordBatch>,
        commit: Commit,
    ) -> Result<u64> {
        self.write(name, batches, commit, Mode::Append).await
    }

    /// Replaces the table's rows with `batches` as one commit; returns the new version. Older
    /// versions stay readable.
    pub async fn overwrite(
        &self,
        name: &str,
        batches: Vec<RecordBatch>,
        commit: Commit,
    ) -> Result<u64> {
        self.write(name, batches, commit, Mode::Overwrite).await
    }

    async fn write(
        &self,
        name: &str,
        batches: Vec<RecordBatch>,
        commit: Commit,
        mode: Mode,
    ) -> Result<u64> {
        let table = self.load(name, At::Latest).await?;
        for batch in &batches {
            check_schema(name, &table, batch.schema_ref())?;
        }
        let save_mode = match mode {
            Mode::Append => SaveMode::Append,
            Mode::Overwrite => SaveMode::Overwrite,
        };
        let table = table
            .write(batches)
            .with_save_mode(save_mode)
            .with_commit_properties(properties(&commit))
            .await
            .map_err(CatalogError::delta(name))?;
        Ok(table
            .version()
            .expect("a table that was just written has a version"))
    }

    /// Inserts `batches`, replacing the rows whose `keys` columns match, as one commit (a Delta
    /// MERGE); returns the new version. Keys must be unique within `batches`.
    pub async fn upsert(
        &self,
        name: &str,
        batches: Vec<RecordBatch>,
        keys: &[&str],
        commit: Commit,
    ) -> Result<u64> {
        let table = self.load(name, At::Latest).await?;
        let Some(first) = batches.first() else {
            return self.latest_version(name).await;
        };
        let schema = first.schema();
        for batch in &batches {
            check_schema(name, &table, batch.schema_ref())?;
        }
        let invalid = |detail: String| CatalogError::InvalidInput {
            table: name.to_string(),
            detail,
        };
        if keys.is_empty() {
            return Err(invalid("upsert needs at least one key column".into()));
        }
        if let Some(k) = keys.iter().find(|k| schema.field_with_name(k).is_err()) {
            return Err(invalid(format!("upsert key {k:?} is not a column")));
        }
        let ctx = SessionContext::new();
        let source = ctx
            .read_batches(batches)
            .map_err(CatalogError::datafusion(name))?;
        let predicate = keys
            .iter()
            .map(|k| col(format!("target.{k}")).eq(col(format!("source.{k}"))))
            .reduce(|a, b| a.and(b))
            .expect("keys is not empty");
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let (table, _metrics) = table
            .merge(source, predicate)
            .with_source_alias("source")
            .with_target_alias("target")
            .with_commit_properties(properties(&commit))
            .when_matched_update(|mut update| {
                for c in &columns {
                    update = update.update(c.as_str(), col(format!("source.{c}")));
                }
                update
            })
            .and_then(|merge| {
                merge.when_not_matched_insert(|mut insert| {
                    for c in &columns {
                        insert = insert.set(c.as_str(), col(format!("source.{c}")));
                    }
                    insert
                })
            })
            .map_err(CatalogError::delta(name))?
            .await
            .map_err(CatalogError::delta(name))?;
        Ok(table
            .version()
            .expect("a table that was just merged has a version"))
    }
}

/// Commit properties carrying `commit` under the provenance key.
fn properties(commit: &Commit) -> CommitProperties {
    let value = serde_json::to_value(commit).expect("Commit serialises to JSON");
    CommitProperties::default().with_metadata([(PROVENANCE_KEY.to_string(), value)])
}

/// Checks `schema` against the table's, comparing Delta types so that Arrow spellings of the same
/// type (Utf8 / Utf8View) agree.
fn check_schema(name: &str, table: &DeltaTable, schema: &Schema) -> Result<()> {
    let snapshot = table.snapshot().map_err(CatalogError::delta(name))?;
    let expected = snapshot.schema();
    let describe_kernel = |s: &StructType| {
        s.fields()
            .map(|f| format!("{}: {}", f.name(), f.data_type()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let describe_arrow = |s: &Schema| {
        s.fields()
            .iter()
            .map(|f| format!("{}: {}", f.name(), f.data_type()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mismatch = |difference: String| CatalogError::SchemaMismatch {
        table: name.to_string(),
        difference,
        expected: describe_kernel(&expected),
        found: describe_arrow(schema),
    };
    let found: StructType = schema
        .try_into_kernel()
        .map_err(|e| mismatch(e.to_string()))?;
    for field in expected.fields() {
        match found.field(field.name()) {
            None => return Err(mismatch(format!("column {:?} is missing", field.name()))),
            Some(f) if f.data_type() != field.data_type() => {
                return Err(mismatch(format!(
                    "column {:?} has type {} but the table has {}",
                    field.name(),
                    f.data_type(),
                    field.data_type()
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = found.fields().find(|f| expected.field(f.name()).is_none()) {
        return Err(mismatch(format!(
            "column {:?} is not in the table",
            extra.name()
        )));
    }
    let order_differs = found
        .fields()
        .map(|f| f.name())
        .ne(expected.fields().map(|f| f.name()));
    if order_differs {
        return Err(mismatch("the columns are in a different order".into()));
    }
    Ok(())
}
