//! End-to-end crawls of the fixture server on 127.0.0.1: exact records per source, every hazard,
//! and kill -9 + `--resume`.

mod every_source;
mod hazards;
mod resume;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use indicatif::ProgressBar;
use negopt_catalog::Catalog;
use negopt_etl::crawl::fetcher::{FetchConfig, Fetcher, PrivateAddresses, authority};
use negopt_etl::crawl::output::{Revisit, Store, read_pairs};
use negopt_etl::crawl::{CrawlConfig, Resume, Summary, crawl};
use negopt_etl::fixtures::{FixtureConfig, FixtureServer, FixtureSource};
use negopt_etl::sources::{self, PairRecord, SourceOptions};
use url::Url;

/// Fetch limits for tests: short timeouts and backoff so hazards resolve quickly.
pub fn test_fetch_config() -> FetchConfig {
    FetchConfig {
        read_timeout: Duration::from_millis(2000),
        total_timeout: Duration::from_secs(10),
        backoff_base: Duration::from_millis(10),
        retries: 3,
        private: PrivateAddresses::Allow,
        ..FetchConfig::default()
    }
}

pub async fn start(config: FixtureConfig) -> FixtureServer {
    FixtureServer::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("fixture server starts")
}

/// Crawls `names` from `server` into the catalog at `dir`.
pub async fn crawl_into(
    server: &FixtureServer,
    dir: &Path,
    names: &[&str],
    fetch: FetchConfig,
    resume: Resume,
) -> Summary {
    crawl_with(server, dir, names, fetch, resume, |_| {}).await
}

/// As [`crawl_into`], with a chance to change the crawl configuration.
pub async fn crawl_with(
    server: &FixtureServer,
    dir: &Path,
    names: &[&str],
    fetch: FetchConfig,
    resume: Resume,
    tweak: impl FnOnce(&mut CrawlConfig),
) -> Summary {
    crawl_at(&server.base_url(), dir, names, fetch, resume, tweak).await
}

/// As [`crawl_with`], against the server at `base` (the fixture server under another name).
pub async fn crawl_at(
    base: &str,
    dir: &Path,
    names: &[&str],
    fetch: FetchConfig,
    resume: Resume,
    tweak: impl FnOnce(&mut CrawlConfig),
) -> Summary {
    let base = base.to_string();
    let options = SourceOptions {
        base_urls: names
            .iter()
            .map(|n| (n.to_string(), base.clone()))
            .collect(),
        min_likes: 1,
        gallery_site: None,
    };
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let sources = sources::build(&names, &options).expect("sources build");
    let allowed: HashSet<String> = [authority(&Url::parse(&base).unwrap())].into();
    let fetcher = Fetcher::new(fetch, allowed).expect("client builds");
    let mut config = CrawlConfig {
        concurrency: 8,
        batch_items: 700,
        max_pages: None,
        max_items: None,
        checkpoint: dir.join("crawl.checkpoint"),
        resume,
        robots_agent: "negopt-crawler".into(),
        rate_per_host: NonZeroU32::new(100_000).unwrap(),
        zstd_level: 1,
    };
    tweak(&mut config);
    let catalog = Catalog::open_or_create(dir).unwrap();
    let revisit = match resume {
        Resume::Fresh => Revisit::Upsert,
        Resume::FromCheckpoint => Revisit::Skip,
    };
    let mut store = Store::open(catalog, revisit).await.expect("store opens");
    crawl(
        &mut store,
        sources,
        fetcher,
        &config,
        &ProgressBar::hidden(),
    )
    .await
    .expect("crawl runs")
}

/// The stored pairs of one source, by item id.
pub async fn stored(dir: &Path, source: &str) -> BTreeMap<String, PairRecord> {
    let catalog = Catalog::open(dir).unwrap();
    let all = read_pairs(&catalog).await.unwrap();
    let total = all.len();
    let map: BTreeMap<String, PairRecord> = all
        .into_iter()
        .filter(|r| r.source == source)
        .map(|r| (r.item_id.clone(), r))
        .collect();
    let keys: HashSet<(String, String)> = read_pairs(&catalog)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.source, r.item_id))
        .collect();
    assert_eq!(keys.len(), total, "no (source, item_id) stored twice");
    map
}

/// Asserts the stored records of `source` equal the fixture's expected ones exactly.
pub async fn assert_exact(
    dir: &Path,
    server: &FixtureServer,
    config: &FixtureConfig,
    source: FixtureSource,
) {
    let expected = config.expected_records(source, &server.base_url(), 1);
    let got = stored(dir, source.name()).await;
    assert_eq!(got.len(), expected.len(), "{} record count", source.name());
    for want in expected {
        let have = got
            .get(&want.item_id)
            .unwrap_or_else(|| panic!("{} item {} missing", source.name(), want.item_id));
        assert_eq!(have, &want, "{} item {}", source.name(), want.item_id);
    }
}
