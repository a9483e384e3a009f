//! `etl crawl`: a polite, resumable crawler that stores pages and pairs in the catalog.
//!
//! ```text
//!  frontier ──pop──► task: politeness.admit (robots, rate) ─► fetcher.fetch (limits, retries)
//!     ▲                                                                  │
//!     │ next requests (deduped by URL)                                   ▼
//!     └──────────────── Source::parse ◄────────────── page ◄─────────────┘
//!                            │ records (deduped by (source, item_id) within the run)
//!                            ▼
//!                  buffer ──(batch full / crawl done)──► Store::commit: raw_pages + raw_pairs
//!                                                          then checkpoint (temp + rename)
//! ```
//!
//! Order of writes: a batch is committed first, then the checkpoint naming what is still to do.
//! A kill between the two re-fetches some pages on `--resume`; their pairs are already stored
//! and are skipped, so the stored set equals an uninterrupted crawl's.
//!
//! Test: `cargo test -p negopt-etl crawl`.

pub mod checkpoint;
pub mod cli;
pub mod fetcher;
pub mod frontier;
pub mod output;
pub mod politeness;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;
use url::Url;

use checkpoint::{Checkpoint, CheckpointError};
use fetcher::{FetchError, Fetched, Fetcher};
use frontier::{Frontier, Pushed, Ticket};
use output::{PageRow, PairRow, Store};
use politeness::{Politeness, Refusal};

use crate::sources::{Request, Source};

/// Whether to continue from the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Start from the sources' seeds.
    Fresh,
    /// Continue from the checkpoint.
    FromCheckpoint,
}

/// How a crawl runs (fetch limits are in [`fetcher::FetchConfig`]).
#[derive(Debug, Clone)]
pub struct CrawlConfig {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Pairs per committed batch.
    pub batch_items: usize,
    /// Stop after this many fetched pages.
    pub max_pages: Option<u64>,
    /// Stop after this many stored pairs.
    pub max_items: Option<u64>,
    /// Where the checkpoint lives.
    pub checkpoint: PathBuf,
    /// Fresh or resumed.
    pub resume: Resume,
    /// The token matched against robots.txt `User-agent` groups.
    pub robots_agent: String,
    /// Requests per second per host (before Crawl-delay).
    pub rate_per_host: std::num::NonZeroU32,
    /// zstd level of stored page bodies.
    pub zstd_level: i32,
}

/// Why a crawl stopped with an error (fetch and parse failures are counted, not errors).
#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    /// Opening or writing the catalog failed.
    #[error(transparent)]
    Catalog(Box<negopt_catalog::CatalogError>),
    /// Reading or writing the crawl tables failed.
    #[error(transparent)]
    Store(#[from] output::StoreError),
    /// The checkpoint could not be read or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// `--resume` with no checkpoint, or one for other sources.
    #[error("{0}")]
    Resume(String),
    /// A flag's value is unusable.
    #[error("{0}")]
    Args(String),
    /// The fixture server could not start.
    #[error("cannot start the fixture server: {0}")]
    Fixtures(std::io::Error),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

impl From<negopt_catalog::CatalogError> for CrawlError {
    fn from(e: negopt_catalog::CatalogError) -> CrawlError {
        CrawlError::Catalog(Box::new(e))
    }
}

/// What a crawl did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Every counter: `pages`, `pairs new`, `retries`, and each drop or failure reason.
    pub counters: BTreeMap<String, u64>,
    /// Wall time.
    pub elapsed: Duration,
}

impl Summary {
    /// A counter's value (0 when never counted).
    pub fn get(&self, key: &str) -> u64 {
        self.counters.get(key).copied().unwrap_or(0)
    }

    fn add(&mut self, key: &str, n: u64) {
        if n > 0 {
            *self.counters.entry(key.to_string()).or_default() += n;
        }
    }
}

/// Counter names the crawl always uses.
pub mod counter {
    /// Pages fetched and parsed (or kept with a parse error).
    pub const PAGES: &str = "pages";
    /// Pairs appended.
    pub const PAIRS_NEW: &str = "pairs new";
    /// Stored pairs updated by a re-crawl.
    pub const PAIRS_UPDATED: &str = "pairs updated";
    /// Stored pairs skipped on resume.
    pub const PAIRS_ALREADY_STORED: &str = "pairs already stored";
    /// Pairs whose key repeated within the run.
    pub const DUPLICATE_KEY: &str = "duplicate key";
    /// Requests whose URL was already seen (cursor loops, repeated links).
    pub const ALREADY_VISITED: &str = "already visited";
    /// Retries of fetches.
    pub const RETRIES: &str = "retries";
    /// Pages kept with a parse error.
    pub const PARSE_ERRORS: &str = "parse errors";
    /// Pages unchanged since a previous crawl.
    pub const PAGES_UNCHANGED: &str = "pages unchanged";
    /// Commits (batches).
    pub const BATCHES: &str = "batches";
}

enum Outcome {
    Fetched(Fetched),
    Failed(FetchError),
    Refused(Refusal),
}

struct Done {
    ticket: Ticket,
    request: Request,
    outcome: Outcome,
}

/// The mutable state of one crawl run.
struct Run<'a> {
    config: &'a CrawlConfig,
    sources: HashMap<String, Arc<dyn Source>>,
    source_order: Vec<String>,
    frontier: Frontier,
    summary: Summary,
    run_keys: HashSet<(String, String)>,
    pages: Vec<PageRow>,
    pairs: Vec<PairRow>,
    pages_started: u64,
}

/// Crawls `sources` into `store` with `fetcher`'s limits; `progress` shows pages/s, items,
/// errors and retries.
pub async fn crawl(
    store: &mut Store,
    sources: Vec<Arc<dyn Source>>,
    fetcher: Fetcher,
    config: &CrawlConfig,
    progress: &ProgressBar,
) -> Result<Summary, CrawlError> {
    let start = Instant::now();
    let source_order: Vec<String> = sources.iter().map(|s| s.name().to_string()).collect();
    let mut run = Run {
        config,
        sources: sources
            .iter()
            .map(|s| (s.name().to_string(), s.clone()))
            .collect(),
        source_order: source_order.clone(),
        frontier: Frontier::default(),
        summary: Summary::default(),
        run_keys: HashSet::new(),
        pages: Vec::new(),
        pairs: Vec::new(),
        pages_started: 0,
    };
    match config.resume {
        Resume::Fresh => {
            for seed in sources.iter().flat_map(|s| s.seeds()) {
                run.frontier.push(seed);
            }
        }
        Resume::FromCheckpoint => {
            let cp = checkpoint::load(&config.checkpoint)?.ok_or_else(|| {
                CrawlError::Resume(format!(
                    "--resume: no checkpoint at {} (help: crawl once without --resume)",
                    config.checkpoint.display()
                ))
            })?;
            if cp.sources != source_order {
                return Err(CrawlError::Resume(format!(
                    "--resume: the checkpoint is for sources {:?}, not {:?} (help: pass --sources {})",
                    cp.sources,
                    source_order,
                    cp.sources.join(",")
                )));
            }
            run.summary.counters = cp.counters.into_iter().collect();
            run.frontier = Frontier::restore(cp.pending, cp.seen);
        }
    }
    let politeness = Arc::new(Politeness::new(config.rate_per_host, &config.robots_agent));
    let mut tasks: JoinSet<Done> = JoinSet::new();
    loop {
        while tasks.len() < config.concurrency && !run.budget_spent() {
            let Some((ticket, request)) = run.frontier.pop() else {
                break;
            };
            run.pages_started += 1;
            let (fetcher, politeness) = (fetcher.clone(), politeness.clone());
            tasks.spawn(async move {
                let outcome = fetch(&fetcher, &politeness, &request.url).await;
                Done {
                    ticket,
                    request,
                    outcome,
                }
            });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let done = joined.expect("crawl tasks do not panic");
        run.frontier.done(done.ticket);
        run.absorb(done);
        progress.set_position(run.summary.get(counter::PAGES));
        progress.set_message(run.progress_line(start.elapsed()));
        if run.pairs.len() >= config.batch_items {
            run.commit(store).await?;
        }
    }
    run.commit(store).await?;
    run.summary.elapsed = start.elapsed();
    Ok(run.summary)
}

async fn fetch(fetcher: &Fetcher, politeness: &Politeness, url: &str) -> Outcome {
    let parsed = match Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            return Outcome::Failed(FetchError::BadUrl {
                url: url.into(),
                message: e.to_string(),
            });
        }
    };
    if let Err(e) = fetcher.check_address(&parsed) {
        return Outcome::Failed(e);
    }
    match politeness.admit(fetcher, &parsed).await {
        Ok(()) => {}
        // The same refusal as a private IP literal's, counted under the same reason.
        Err(Refusal::PrivateHost) => {
            return Outcome::Failed(FetchError::PrivateAddress { url: url.into() });
        }
        Err(refusal) => return Outcome::Refused(refusal),
    }
    match fetcher.fetch(url).await {
        Ok(f) => Outcome::Fetched(f),
        Err(e) => Outcome::Failed(e),
    }
}

impl Run<'_> {
    /// No more requests may start: `--max-pages` or `--max-items` reached.
    fn budget_spent(&self) -> bool {
        self.config
            .max_pages
            .is_some_and(|max| self.pages_started >= max)
            || self.items_spent()
    }

    /// No more pairs may be kept: `--max-items` reached.
    fn items_spent(&self) -> bool {
        let kept = self.summary.get(counter::PAIRS_NEW) + self.pairs.len() as u64;
        self.config.max_items.is_some_and(|max| kept >= max)
    }

    fn progress_line(&self, elapsed: Duration) -> String {
        let pages = self.summary.get(counter::PAGES);
        let errors: u64 = self
            .summary
            .counters
            .iter()
            .filter(|(k, _)| k.starts_with("error: "))
            .map(|(_, v)| v)
            .sum();
        format!(
            "{:.0} pages/s, {} items, {} errors, {} retries",
            pages as f64 / elapsed.as_secs_f64().max(1e-3),
            self.summary.get(counter::PAIRS_NEW) + self.pairs.len() as u64,
            errors + self.summary.get(counter::PARSE_ERRORS),
            self.summary.get(counter::RETRIES),
        )
    }

    /// Folds one finished request into the buffers and counters.
    fn absorb(&mut self, done: Done) {
        let fetched = match done.outcome {
            Outcome::Fetched(f) => f,
            Outcome::Failed(e) => {
                tracing::warn!(error = %e, "fetch failed");
                self.summary.add(&format!("error: {}", e.reason()), 1);
                return;
            }
            Outcome::Refused(r) => {
                self.summary.add(&format!("skipped: {}", r.reason()), 1);
                return;
            }
        };
        self.summary
            .add(counter::RETRIES, u64::from(fetched.retries));
        self.summary.add(counter::PAGES, 1);
        let page = fetched.page;
        let source = self
            .sources
            .get(&done.request.source)
            .expect("requests only name crawled sources")
            .clone();
        let sha256 = hex::encode(Sha256::digest(&page.body));
        let fetched_at = Utc::now();
        let (items, error) = match source.parse(&done.request, &page) {
            Ok(parsed) => {
                for (reason, n) in &parsed.dropped {
                    self.summary.add(&format!("dropped: {reason}"), *n);
                }
                for next in parsed.next {
                    if self.frontier.push(next) == Pushed::AlreadySeen {
                        self.summary.add(counter::ALREADY_VISITED, 1);
                    }
                }
                let mut kept = 0;
                for record in parsed.records {
                    if self.items_spent() {
                        self.summary.add("dropped: over --max-items", 1);
                        continue;
                    }
                    let key = (record.source.clone(), record.item_id.clone());
                    if !self.run_keys.insert(key) {
                        self.summary.add(counter::DUPLICATE_KEY, 1);
                        continue;
                    }
                    kept += 1;
                    self.pairs.push(PairRow {
                        record,
                        fetched_at,
                        page_sha256: sha256.clone(),
                    });
                }
                (kept, None)
            }
            Err(e) => {
                tracing::warn!(error = %e, "page kept with a parse error");
                self.summary.add(counter::PARSE_ERRORS, 1);
                (0, Some(e.to_string()))
            }
        };
        let body_zstd = zstd::bulk::compress(&page.body, self.config.zstd_level)
            .expect("zstd compresses any in-memory buffer");
        self.pages.push(PageRow {
            url: page.url,
            source: done.request.source,
            status: page.status,
            fetched_at,
            content_type: page.content_type,
            sha256,
            body_len: page.body.len(),
            body_zstd,
            items,
            error,
        });
    }

    /// Commits the buffers (if any) and then writes the checkpoint.
    async fn commit(&mut self, store: &mut Store) -> Result<(), CrawlError> {
        if !self.pages.is_empty() || !self.pairs.is_empty() {
            let params = serde_json::json!({ "sources": self.source_order });
            let counts = store
                .commit(
                    std::mem::take(&mut self.pages),
                    std::mem::take(&mut self.pairs),
                    params,
                )
                .await?;
            self.summary
                .add(counter::PAIRS_NEW, counts.pairs_new as u64);
            self.summary
                .add(counter::PAIRS_UPDATED, counts.pairs_updated as u64);
            self.summary.add(
                counter::PAIRS_ALREADY_STORED,
                counts.pairs_already_stored as u64,
            );
            self.summary
                .add(counter::PAGES_UNCHANGED, counts.pages_unchanged as u64);
            self.summary.add(counter::BATCHES, 1);
        }
        checkpoint::save(
            &self.config.checkpoint,
            &Checkpoint {
                format: checkpoint::FORMAT,
                sources: self.source_order.clone(),
                pending: self.frontier.pending(),
                seen: self.frontier.seen(),
                counters: self
                    .summary
                    .counters
                    .iter()
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
            },
        )?;
        Ok(())
    }
}
