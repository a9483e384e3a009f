//! A versioned table catalog for the Negative Prompts DB.
//!
//! A [`Catalog`] is a root directory (default `./npdb`, see [`Catalog::root_dir`]) holding named
//! [Delta Lake](https://delta.io) tables, one sub-directory each. Any Delta reader (Spark, Polars,
//! the Python `deltalake` package) can read them.
//!
//! - Every write ([`Catalog::append`], [`Catalog::overwrite`], [`Catalog::upsert`]) is one Delta
//!   commit, i.e. one new table version, and records a [`Commit`]: the operation, its parameters and
//!   the versions of the tables it was computed from (lineage), read back by [`Catalog::history`].
//! - Reads name a version with [`At`]: the latest, a version number, or the version current at a
//!   timestamp.
//! - [`Catalog::register_all`] makes every table queryable from DataFusion: the latest version under
//!   its plain name, any version through the table function `table_at('name', 3)` or
//!   `table_at('name', '2026-11-29T12:00:00Z')`.
//!
//! A crashed writer never damages a table: data files are written first and the commit is one
//! atomic log file, so readers see the previous version until the commit lands.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use arrow::array::{Int64Array, RecordBatch};
//! use arrow::datatypes::{DataType, Field, Schema};
//! use negopt_catalog::{At, Catalog, Commit};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let catalog = Catalog::open_or_create(dir.path()).unwrap();
//! let schema = Arc::new(Schema::new(vec![Field::new("likes", DataType::Int64, false)]));
//! catalog.create_table("demo", schema.clone()).await.unwrap();
//! let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2]))]).unwrap();
//! let version = catalog.append("demo", vec![batch], Commit::new("example")).await.unwrap();
//! assert_eq!(version, 1);
//! let rows: usize = catalog.read("demo", At::Latest).await.unwrap().iter().map(|b| b.num_rows()).sum();
//! assert_eq!(rows, 2);
//! # });
//! ```
#![deny(missing_docs)]

mod catalog;
mod commit;
mod error;
mod log;
mod read;
mod register;
mod write;

pub use catalog::Catalog;
pub use commit::{At, Commit, CommitRecord, Input};
pub use error::{CatalogError, Result};
pub use register::{Registered, TABLE_AT_FUNCTION, VersionedTable};
