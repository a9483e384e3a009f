//! Where pairs come from: a catalog table version scanned by DataFusion, or Arrow batches held
//! in memory by tests. Either way a split arrives as a [`BatchStream`] of narrow batches (the
//! `prompt` and `negative_prompt` columns of that split's rows only), one batch at a time.
//!
//! ```text
//! CatalogSource::stream_split(train)
//!   scan thread (tokio, DataFusion):  provider(table, At::Version(v))
//!     ─► filter split = 'train' ─► project prompt, negative_prompt ─► execute_stream
//!     ─► sync_channel(READ_AHEAD) ─► BatchStream (the caller's thread, batch by batch)
//! ```
//! The scan thread reads ahead at most [`READ_AHEAD`] batches, so memory stays bounded by a few
//! Arrow batches however large the table is; the caller tokenises one batch while the next is
//! decoded.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::compute::kernels::cmp::eq;
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::DataType;
use datafusion::prelude::{SessionContext, col, lit};
use futures::StreamExt;
use negopt_catalog::{At, Catalog};

use super::Split;
use crate::error::{EngineError, Result};

/// Batches the scan thread may decode ahead of the consumer.
pub const READ_AHEAD: usize = 4;

/// The columns every source yields.
pub const TEXT_COLUMNS: [&str; 2] = ["prompt", "negative_prompt"];

/// Arrow batches of one split, in arrival order: each has the [`TEXT_COLUMNS`] and holds only
/// that split's rows. A source error ends the stream with an `Err` item.
pub struct BatchStream {
    /// `None` once dropped, which tells the scan thread to stop.
    rx: Option<Receiver<Result<RecordBatch>>>,
    scan: Option<JoinHandle<()>>,
}

impl BatchStream {
    /// A stream fed by `produce`, which runs on its own thread and sends batches until it is
    /// done or the receiver is dropped.
    fn spawn(
        name: String,
        produce: impl FnOnce(&SyncSender<Result<RecordBatch>>) + Send + 'static,
    ) -> Result<BatchStream> {
        let (tx, rx) = sync_channel(READ_AHEAD);
        let scan = std::thread::Builder::new()
            .name(name)
            .spawn(move || produce(&tx))
            .map_err(|e| crate::internal_err!("spawning the scan thread: {e}"))?;
        Ok(BatchStream {
            rx: Some(rx),
            scan: Some(scan),
        })
    }
}

impl Iterator for BatchStream {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rx.as_ref()?.recv().ok()
    }
}

impl Drop for BatchStream {
    fn drop(&mut self) {
        // Closing the channel makes the scan thread's next send fail, so it stops early.
        drop(self.rx.take());
        if let Some(scan) = self.scan.take() {
            let _ = scan.join();
        }
    }
}

impl std::fmt::Debug for BatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchStream").finish_non_exhaustive()
    }
}

/// Where pairs come from.
pub trait PairSource: Sync {
    /// Human-readable name for errors and logs (e.g. `negative_prompts_db v3`).
    fn describe(&self) -> String;
    /// Streams the rows of `split` as narrow Arrow batches (see [`BatchStream`]).
    fn stream_split(&self, split: Split) -> Result<BatchStream>;
}

/// A table of a catalog at a pinned version, scanned with DataFusion.
#[derive(Debug)]
pub struct CatalogSource {
    catalog: Catalog,
    table: String,
    version: u64,
}

/// Runs a catalog future on a private current-thread runtime: the engine is synchronous and
/// only touches the catalog at start and at metric flushes.
pub fn block_on<F: std::future::Future>(f: F) -> Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| crate::internal_err!("tokio runtime: {e}"))?;
    Ok(rt.block_on(f))
}

impl CatalogSource {
    /// `table` of `catalog` at `version` (latest when `None`).
    pub fn open(catalog: Catalog, table: &str, version: Option<u64>) -> Result<CatalogSource> {
        let version = match version {
            Some(v) => v,
            None => block_on(catalog.latest_version(table))?
                .map_err(|e| EngineError::Catalog(e.to_string()))?,
        };
        Ok(CatalogSource {
            catalog,
            table: table.to_string(),
            version,
        })
    }

    /// The pinned version (recorded in run metadata for lineage).
    pub fn version(&self) -> u64 {
        self.version
    }
}

/// Scans `split`'s rows of `table` at `version` and sends them batch by batch; stops when the
/// receiver hangs up.
async fn scan_split(
    catalog: Catalog,
    table: String,
    version: u64,
    split: Split,
    tx: &SyncSender<Result<RecordBatch>>,
) -> Result<()> {
    let desc = format!("{table} v{version}");
    let ctx = SessionContext::new();
    let provider = catalog
        .provider(&table, At::Version(version), &ctx)
        .await
        .map_err(|e| EngineError::Catalog(e.to_string()))?;
    let unusable = |e: datafusion::error::DataFusionError| {
        EngineError::input(
            &desc,
            format!(
                "cannot select prompt, negative_prompt where split = '{}': {e}\nhelp: train on negative_prompts_db, which has prompt, negative_prompt and split",
                split.as_str()
            ),
        )
    };
    let mut stream = ctx
        .read_table(provider)
        .and_then(|df| df.filter(col("split").eq(lit(split.as_str()))))
        .and_then(|df| df.select_columns(&TEXT_COLUMNS))
        .map_err(unusable)?
        .execute_stream()
        .await
        .map_err(unusable)?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| EngineError::Catalog(format!("scanning {desc}: {e}")))?;
        if batch.num_rows() > 0 && tx.send(Ok(batch)).is_err() {
            break; // the consumer stopped early
        }
    }
    Ok(())
}

impl PairSource for CatalogSource {
    fn describe(&self) -> String {
        format!("{} v{}", self.table, self.version)
    }

    fn stream_split(&self, split: Split) -> Result<BatchStream> {
        let (catalog, table, version) = (self.catalog.clone(), self.table.clone(), self.version);
        BatchStream::spawn(format!("scan-{}", split.as_str()), move |tx| {
            let done = block_on(scan_split(catalog, table, version, split, tx)).and_then(|r| r);
            if let Err(e) = done {
                let _ = tx.send(Err(e));
            }
        })
    }
}

/// Arrow batches held in memory, with a `split` column; [`PairSource::stream_split`] filters
/// and projects them as the catalog scan does.
#[derive(Debug, Clone)]
pub struct MemorySource(pub Vec<RecordBatch>);

impl MemorySource {
    fn split_rows(batch: &RecordBatch, split: Split) -> Result<RecordBatch> {
        let desc = "in-memory batches";
        let column = batch.column_by_name("split").ok_or_else(|| {
            EngineError::input(desc, "has no `split` column\nhelp: train on negative_prompts_db, which has prompt, negative_prompt and split")
        })?;
        let column = cast(column, &DataType::Utf8)
            .map_err(|e| EngineError::input(desc, format!("column `split` is not text: {e}")))?;
        let wanted = StringArray::new_scalar(split.as_str());
        let mask = eq(column.as_string::<i32>(), &wanted)
            .map_err(|e| crate::internal_err!("comparing split: {e}"))?;
        let indices = TEXT_COLUMNS
            .iter()
            .map(|name| {
                batch
                    .schema()
                    .index_of(name)
                    .map_err(|_| EngineError::input(desc, format!("has no `{name}` column")))
            })
            .collect::<Result<Vec<_>>>()?;
        let narrow = batch
            .project(&indices)
            .map_err(|e| crate::internal_err!("projecting text columns: {e}"))?;
        filter_record_batch(&narrow, &mask)
            .map_err(|e| crate::internal_err!("filtering split rows: {e}"))
    }
}

impl PairSource for MemorySource {
    fn describe(&self) -> String {
        "in-memory batches".into()
    }

    fn stream_split(&self, split: Split) -> Result<BatchStream> {
        let batches = self.0.clone();
        BatchStream::spawn(format!("memory-{}", split.as_str()), move |tx| {
            for batch in &batches {
                let narrow = MemorySource::split_rows(batch, split);
                let stop = narrow.is_err();
                if tx.send(narrow).is_err() || stop {
                    return;
                }
            }
        })
    }
}

/// The text columns of a streamed batch, as UTF-8 arrays (catalog scans may yield views).
pub(super) fn text_columns(
    batch: &RecordBatch,
    source: &str,
) -> Result<(Arc<dyn Array>, Arc<dyn Array>)> {
    let column = |name: &str| -> Result<Arc<dyn Array>> {
        let col = batch
            .column_by_name(name)
            .ok_or_else(|| EngineError::input(source, format!("has no `{name}` column")))?;
        cast(col, &DataType::Utf8)
            .map_err(|e| EngineError::input(source, format!("column `{name}` is not text: {e}")))
    };
    Ok((column(TEXT_COLUMNS[0])?, column(TEXT_COLUMNS[1])?))
}
