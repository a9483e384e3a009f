//! The `etl crawl` subcommand: flags, the optional in-process fixture server, progress bar and
//! the printed summary.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use negopt_catalog::Catalog;
use url::Url;

use super::fetcher::{FetchConfig, Fetcher, PrivateAddresses, authority, default_user_agent};
use super::output::{Revisit, Store};
use super::{CrawlConfig, CrawlError, Resume, Summary, crawl};
use crate::fixtures::{FixtureConfig, FixtureServer, Hazards};
use crate::sources::{self, SOURCE_NAMES, SourceOptions, gallery::Site};

/// `etl crawl`: crawl sources into `raw_pages` and `raw_pairs`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Crawl prompt / negative-prompt pairs into raw_pages and raw_pairs",
    long_about = "Fetches the sources' pages politely (robots.txt, per-host rate limit, retries with \
                  backoff, size limits, no private addresses unless allowed), parses pairs and commits \
                  them in batches to the catalog tables raw_pages and raw_pairs, keyed by (source, \
                  item_id). A checkpoint is written after every batch; --resume continues from it. \
                  With --fixtures the command starts the project's fixture server on 127.0.0.1 and \
                  crawls it: no internet needed."
)]
pub struct CrawlArgs {
    /// Sources to crawl, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = SOURCE_NAMES.map(String::from))]
    pub sources: Vec<String>,
    /// Base URL of a source, as NAME=URL (repeatable), e.g. `civitai=https://civitai.com`.
    #[arg(long = "base-url", value_name = "NAME=URL")]
    pub base_urls: Vec<String>,
    /// Start the fixture server on 127.0.0.1 and crawl it (sets every base URL, allows private).
    #[arg(long)]
    pub fixtures: bool,
    /// Items per source served by --fixtures (1 to 1,000,000).
    #[arg(long, default_value_t = 2_000, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub fixture_items: u64,
    /// Seed of the --fixtures data.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub fixture_seed: u64,
    /// Whether --fixtures serves the hazards of a real crawl.
    #[arg(long, value_enum, default_value_t = Hazards::Off)]
    pub fixture_hazards: Hazards,
    /// Continue from the checkpoint of an interrupted crawl.
    #[arg(long)]
    pub resume: bool,
    /// Checkpoint file (default: CATALOG/crawl.checkpoint).
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Stop after fetching this many pages.
    #[arg(long, value_name = "N")]
    pub max_pages: Option<u64>,
    /// Stop after storing this many new pairs.
    #[arg(long, value_name = "N")]
    pub max_items: Option<u64>,
    /// Playground: keep posts with at least this many likes (the paper kept ≥ 1).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub min_likes: i64,
    /// Gallery: TOML site file with CSS selectors (default: the fixture gallery's).
    #[arg(long, value_name = "FILE")]
    pub site: Option<PathBuf>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,
    /// Pairs per catalog commit.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    pub batch_items: usize,
    /// Requests per second per host (robots.txt Crawl-delay can lower it; --fixtures raises it).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub rate: u32,
    /// Fetch private and loopback addresses (refused by default).
    #[arg(long)]
    pub allow_private: bool,
    /// Contact URL put in the User-Agent.
    #[arg(
        long,
        default_value = "https://example.invalid/negopt",
        value_name = "URL"
    )]
    pub contact: String,
    /// Whole User-Agent header (overrides --contact).
    #[arg(long, value_name = "TEXT")]
    pub user_agent: Option<String>,
    /// TCP connect timeout in milliseconds.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub connect_timeout_ms: u64,
    /// Longest wait for the next bytes, in milliseconds.
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    pub read_timeout_ms: u64,
    /// Most body bytes read, in KiB.
    #[arg(long, default_value_t = 2048, value_name = "KIB")]
    pub max_body_kib: usize,
    /// Most bytes a gzip body may decode to, in KiB.
    #[arg(long, default_value_t = 16384, value_name = "KIB")]
    pub max_decompressed_kib: usize,
    /// Most redirects followed (and only to the seeded hosts).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub max_redirects: usize,
    /// Retries of timeouts, broken connections, 429 and 5xx.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub retries: u32,
    /// First retry backoff in milliseconds (doubles, jittered; Retry-After wins when longer).
    #[arg(long, default_value_t = 500, value_name = "MS")]
    pub backoff_ms: u64,
}

impl CrawlArgs {
    /// Parses `--base-url NAME=URL` flags.
    fn base_urls(&self) -> Result<BTreeMap<String, String>, CrawlError> {
        self.base_urls
            .iter()
            .map(|kv| {
                let (name, url) = kv.split_once('=').ok_or_else(|| {
                    CrawlError::Args(format!("--base-url {kv:?}: expected NAME=URL"))
                })?;
                Url::parse(url).map_err(|e| CrawlError::Args(format!("--base-url {kv:?}: {e}")))?;
                Ok((name.to_string(), url.to_string()))
            })
            .collect()
    }

    /// The fetch limits these flags describe.
    pub fn fetch_config(&self) -> FetchConfig {
        FetchConfig {
            user_agent: self
                .user_agent
                .clone()
                .unwrap_or_else(|| default_user_agent(&self.contact)),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            read_timeout: Duration::from_millis(self.read_timeout_ms),
            total_timeout: Duration::from_millis(self.read_timeout_ms.saturating_mul(4)),
            max_body: self.max_body_kib << 10,
            max_decompressed: self.max_decompressed_kib << 10,
            max_redirects: self.max_redirects,
            retries: self.retries,
            backoff_base: Duration::from_millis(self.backoff_ms),
            backoff_max: Duration::from_secs(60),
            private: if self.allow_private || self.fixtures {
                PrivateAddresses::Allow
            } else {
                PrivateAddresses::Refuse
            },
        }
    }
}

/// Runs `etl crawl` against the catalog at `catalog_root`.
pub async fn run(args: &CrawlArgs, catalog_root: PathBuf) -> Result<ExitCode, CrawlError> {
    let mut base_urls = args.base_urls()?;
    let mut rate = args.rate;
    let _server = if args.fixtures {
        let config = FixtureConfig {
            hazards: args.fixture_hazards,
            ..FixtureConfig::new(args.fixture_seed, args.fixture_items)
        };
        let server = FixtureServer::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(CrawlError::Fixtures)?;
        for name in SOURCE_NAMES {
            base_urls
                .entry(name.to_string())
                .or_insert_with(|| server.base_url());
        }
        rate = rate.max(100_000);
        eprintln!("etl: fixture server at {}", server.base_url());
        Some(server)
    } else {
        None
    };
    let gallery_site = match &args.site {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CrawlError::Args(format!("--site {}: {e}", path.display())))?;
            Some(Site::from_toml(&text, &path.display().to_string()).map_err(CrawlError::Args)?)
        }
        None => None,
    };
    let options = SourceOptions {
        base_urls: base_urls.clone(),
        min_likes: args.min_likes,
        gallery_site,
    };
    let sources = sources::build(&args.sources, &options).map_err(CrawlError::Args)?;
    let allowed_hosts: HashSet<String> = args
        .sources
        .iter()
        .filter_map(|name| base_urls.get(name))
        .filter_map(|u| Url::parse(u).ok())
        .map(|u| authority(&u))
        .collect();
    let fetch = args.fetch_config();
    let fetcher = Fetcher::new(fetch, allowed_hosts)?;
    let config = CrawlConfig {
        concurrency: args.concurrency.max(1),
        batch_items: args.batch_items.max(1),
        max_pages: args.max_pages,
        max_items: args.max_items,
        checkpoint: args
            .checkpoint
            .clone()
            .unwrap_or_else(|| catalog_root.join("crawl.checkpoint")),
        resume: if args.resume {
            Resume::FromCheckpoint
        } else {
            Resume::Fresh
        },
        robots_agent: "negopt-crawler".into(),
        rate_per_host: NonZeroU32::new(rate)
            .ok_or_else(|| CrawlError::Args("--rate must be at least 1".into()))?,
        zstd_level: 3,
    };
    let catalog = Catalog::open_or_create(&catalog_root)?;
    let revisit = if args.resume {
        Revisit::Skip
    } else {
        Revisit::Upsert
    };
    let mut store = Store::open(catalog, revisit).await?;
    let progress = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {elapsed} {pos} pages · {msg}")
            .expect("a valid progress template"),
    );
    progress.enable_steady_tick(Duration::from_millis(200));
    let summary = crawl(&mut store, sources, fetcher, &config, &progress).await?;
    progress.finish_and_clear();
    print_summary(&summary, &catalog_root);
    Ok(ExitCode::SUCCESS)
}

fn print_summary(summary: &Summary, catalog_root: &std::path::Path) {
    println!(
        "crawl finished in {:.1} s into {}",
        summary.elapsed.as_secs_f64(),
        catalog_root.display()
    );
    for (key, value) in &summary.counters {
        println!("  {key:<40} {value:>10}");
    }
}
