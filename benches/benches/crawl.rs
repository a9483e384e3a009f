//! `etl crawl` end to end on loopback: 100,000 items (500 JSON pages of 200, the playground
//! source with `--min-likes 0` so every item is stored) fetched from the fixture server,
//! parsed, and committed to a fresh catalog in batches of 20,000 (`raw_pages` + `raw_pairs`).
//! The peer, measured in the same run, fetches the same 500 pages with the same client and
//! limits but neither parses nor stores them: the floor set by HTTP and the fixture server.
//! After the runs it prints items/s and the process's peak RSS (VmHWM; it includes the fixture
//! server, which runs in the same process).
//!
//! Run: `cargo bench -p negopt-benches --bench crawl` (`CRAWL_BENCH_ITEMS` for another size).
//! Target (issue 3): 100,000 items in under 10 s on the 2-core machine, memory bounded.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use indicatif::ProgressBar;
use negopt_benches::peak_rss_mib;
use negopt_catalog::Catalog;
use negopt_etl::crawl::fetcher::{FetchConfig, Fetcher, PrivateAddresses};
use negopt_etl::crawl::output::{Revisit, Store};
use negopt_etl::crawl::{CrawlConfig, Resume, counter, crawl};
use negopt_etl::fixtures::{FixtureConfig, FixtureServer};
use negopt_etl::sources::{self, SourceOptions};

fn items() -> u64 {
    std::env::var("CRAWL_BENCH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn fetcher(server: &FixtureServer) -> Fetcher {
    let config = FetchConfig {
        private: PrivateAddresses::Allow,
        ..FetchConfig::default()
    };
    Fetcher::new(config, HashSet::from([server.addr().to_string()])).expect("client builds")
}

async fn crawl_once(server: &FixtureServer, n: u64) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SourceOptions {
        base_urls: [("playground".to_string(), server.base_url())].into(),
        min_likes: 0,
        gallery_site: None,
    };
    let sources = sources::build(&["playground".to_string()], &options).expect("source builds");
    let config = CrawlConfig {
        concurrency: 8,
        batch_items: 20_000,
        max_pages: None,
        max_items: None,
        checkpoint: dir.path().join("crawl.checkpoint"),
        resume: Resume::Fresh,
        robots_agent: "negopt-crawler".into(),
        rate_per_host: NonZeroU32::new(100_000).expect("non-zero"),
        zstd_level: 3,
    };
    let start = Instant::now();
    let catalog = Catalog::open_or_create(dir.path()).expect("catalog");
    let mut store = Store::open(catalog, Revisit::Upsert).await.expect("store");
    let summary = crawl(
        &mut store,
        sources,
        fetcher(server),
        &config,
        &ProgressBar::hidden(),
    )
    .await
    .expect("crawl");
    let elapsed = start.elapsed();
    assert_eq!(summary.get(counter::PAIRS_NEW), n, "every item stored");
    elapsed
}

async fn fetch_only(server: &FixtureServer, n: u64) -> Duration {
    let f = fetcher(server);
    let base = server.base_url();
    let start = Instant::now();
    for page in 0..n.div_ceil(200) {
        let url = if page == 0 {
            format!("{base}/feed?limit=200")
        } else {
            format!("{base}/feed?limit=200&cursor=pg{}", page * 200)
        };
        f.fetch(&url).await.expect("fetch");
    }
    start.elapsed()
}

fn bench_crawl(c: &mut Criterion) {
    let n = items();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let server = runtime
        .block_on(FixtureServer::start(
            FixtureConfig::new(7, n),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        ))
        .expect("fixture server");
    let mut group = c.benchmark_group("cpu_crawl_loopback");
    group.sample_size(10);
    group.throughput(criterion::Throughput::Elements(n));
    group.bench_function(format!("crawl_fetch_parse_commit_{n}"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| runtime.block_on(crawl_once(&server, n)))
                .sum()
        })
    });
    group.bench_function(format!("peer_fetch_only_{n}"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| runtime.block_on(fetch_only(&server, n)))
                .sum()
        })
    });
    group.finish();
    if let Some(mib) = peak_rss_mib() {
        println!("crawl bench: peak RSS {mib:.0} MiB (fixture server included)");
    }
}

criterion_group!(benches, bench_crawl);
criterion_main!(benches);
