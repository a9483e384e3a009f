//! Every hazard of the fixture server and the crawler's answer to it: retried, skipped with a
//! counted reason, or refused — and nothing already stored lost.

use std::time::{Duration, Instant};

use negopt_catalog::{At, Catalog};
use negopt_etl::crawl::Resume;
use negopt_etl::crawl::counter;
use negopt_etl::crawl::fetcher::{FetchConfig, PrivateAddresses, default_user_agent, is_private};
use negopt_etl::crawl::output::RAW_PAGES;
use negopt_etl::fixtures::{FixtureConfig, FixtureSource, Hazards, RobotsMode};

use super::{assert_exact, crawl_at, crawl_into, start, stored, test_fetch_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_hazards_are_retried_skipped_or_refused() {
    let config = FixtureConfig {
        hazards: Hazards::On,
        slow: Duration::from_secs(6),
        ..FixtureConfig::new(12, 450)
    };
    let server = start(config.clone()).await;
    let base = server.base_url();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let s = crawl_into(
        &server,
        dir.path(),
        &["civitai", "playground", "gallery", "a1111"],
        test_fetch_config(),
        Resume::Fresh,
    )
    .await;
    // 429 and 503 carry Retry-After: 1, which the crawler waited for.
    assert!(started.elapsed() >= Duration::from_secs(1));

    // Every source's records are exact: duplicates, retries and redirects lost nothing and
    // stored nothing twice (playground without its malformed last page).
    for source in FixtureSource::ALL {
        assert_exact(dir.path(), &server, &config, source).await;
    }

    // civitai: 429 retried; the overlapping item of pages 2 and 3 deduped; the cursor loop
    // back to page 2 stopped.
    let page2 = "/api/v1/images?limit=200&sort=Newest&withMeta=true&flatMeta=true&browsingLevel=1&cursor=c200";
    assert_eq!(server.requests_to(page2), 2, "429 then success");
    assert_eq!(s.get(counter::DUPLICATE_KEY), 2);
    assert_eq!(s.get(counter::ALREADY_VISITED), 1);

    // playground: 503 retried; the malformed last page kept in raw_pages with its error.
    assert_eq!(server.requests_to("/feed?limit=200"), 2, "503 then success");
    let catalog = Catalog::open(dir.path()).unwrap();
    let pages = catalog.read(RAW_PAGES, At::Latest).await.unwrap();
    let mut errors = Vec::new();
    for b in &pages {
        let url = arrow::compute::cast(
            b.column_by_name("url").unwrap(),
            &arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        let err = arrow::compute::cast(
            b.column_by_name("error").unwrap(),
            &arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        let (url, err) = (
            arrow::array::as_string_array(&url),
            arrow::array::as_string_array(&err),
        );
        for i in 0..b.num_rows() {
            if !arrow::array::Array::is_null(err, i) {
                errors.push((url.value(i).to_string(), err.value(i).to_string()));
            }
        }
    }
    errors.sort();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].0, format!("{base}/feed?limit=200&cursor=pg400"));
    assert!(errors[0].1.starts_with("malformed JSON from"), "{errors:?}");
    assert_eq!(errors[1].0, format!("{base}/gallery/broken"));
    assert_eq!(
        errors[1].1,
        format!("body of {base}/gallery/broken is not valid UTF-8")
    );
    assert_eq!(s.get(counter::PARSE_ERRORS), 2);

    // gallery: the truncated page retried; robots.txt, redirects and offsite links answered.
    assert_eq!(
        server.requests_to("/gallery/page/1"),
        2,
        "truncated then whole"
    );
    assert_eq!(server.requests_to("/gallery/private/0"), 0);
    assert_eq!(s.get("skipped: robots.txt disallowed"), 1);
    assert_eq!(s.get("error: redirect to another host"), 1);
    assert_eq!(s.get("error: too many redirects"), 1);
    assert_eq!(s.get("dropped: offsite link"), 1);
    assert_eq!(server.requests_to("/gallery/legacy/2"), 1, "301 followed");

    // a1111: the slow index timed out once and was retried; the oversize image and the gzip
    // bomb refused.
    assert_eq!(server.requests_to("/a1111/index/0"), 2);
    assert_eq!(s.get("error: body too large"), 1);
    assert_eq!(s.get("error: decompressed body too large"), 1);
    // 429 + 503 + truncated + timeout; a loaded machine may add timeouts, never fewer.
    assert!(s.get(counter::RETRIES) >= 4, "{:?}", s.counters);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_refuses_private_addresses_unless_allowed() {
    let server = start(FixtureConfig::new(1, 100)).await;
    let dir = tempfile::tempdir().unwrap();
    let fetch = FetchConfig {
        private: PrivateAddresses::Refuse,
        ..test_fetch_config()
    };
    let s = crawl_into(
        &server,
        dir.path(),
        &["civitai", "gallery"],
        fetch,
        Resume::Fresh,
    )
    .await;
    assert_eq!(s.get("error: private address refused"), 2);
    assert_eq!(s.get(counter::PAGES), 0);
    assert_eq!(
        server.requests_to("/robots.txt"),
        0,
        "not even robots.txt was fetched"
    );
}

/// A host name that resolves (here, through /etc/hosts) only to private addresses is refused
/// like a private IP literal: counted under the same reason, robots.txt never fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_refuses_host_names_that_resolve_only_to_private_addresses() {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("this test reads the machine's host name from /proc")
        .trim()
        .to_string();
    let addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), 0))
        .await
        .map(|a| a.collect())
        .unwrap_or_default();
    if addrs.is_empty() || !addrs.iter().all(|a| is_private(a.ip())) {
        eprintln!("skipped: host name {host:?} does not resolve only to private addresses");
        return;
    }
    let server = start(FixtureConfig::new(1, 100)).await;
    let dir = tempfile::tempdir().unwrap();
    let base = format!("http://{host}:{}", server.addr().port());
    let fetch = FetchConfig {
        private: PrivateAddresses::Refuse,
        ..test_fetch_config()
    };
    let s = crawl_at(
        &base,
        dir.path(),
        &["civitai", "gallery"],
        fetch,
        Resume::Fresh,
        |_| {},
    )
    .await;
    assert_eq!(
        s.get("error: private address refused"),
        2,
        "{:?}",
        s.counters
    );
    assert_eq!(s.get("skipped: host skipped (robots.txt unavailable)"), 0);
    assert_eq!(s.get(counter::PAGES), 0);
    assert_eq!(server.requests_to("/robots.txt"), 0);
}

/// Every request, robots.txt included, carries the configured User-Agent; the default one names
/// negopt, its version and the contact URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_sends_its_user_agent() {
    let contact = "https://example.org/negopt-contact";
    let agent = default_user_agent(contact);
    assert_eq!(
        agent,
        format!("negopt-crawler/{} (+{contact})", env!("CARGO_PKG_VERSION"))
    );
    let server = start(FixtureConfig::new(3, 300)).await;
    let dir = tempfile::tempdir().unwrap();
    let fetch = FetchConfig {
        user_agent: agent.clone(),
        ..test_fetch_config()
    };
    let s = crawl_into(
        &server,
        dir.path(),
        &["playground", "gallery"],
        fetch,
        Resume::Fresh,
    )
    .await;
    assert!(s.get(counter::PAGES) > 2, "{:?}", s.counters);
    assert!(server.requests_to("/robots.txt") >= 1);
    assert_eq!(server.user_agents(), vec![agent]);
}

async fn crawl_gallery_with_robots(
    mode: RobotsMode,
) -> (negopt_etl::crawl::Summary, usize, Duration) {
    let config = FixtureConfig {
        robots: mode,
        hazards: Hazards::On,
        ..FixtureConfig::new(2, 100)
    };
    let server = start(config).await;
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let s = crawl_into(
        &server,
        dir.path(),
        &["gallery"],
        test_fetch_config(),
        Resume::Fresh,
    )
    .await;
    let n = if s.get(counter::PAIRS_NEW) > 0 {
        stored(dir.path(), "gallery").await.len()
    } else {
        0
    };
    (s, n, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_robots_txt_status_rules() {
    // 404: everything allowed, the private page included.
    let (s, n, _) = crawl_gallery_with_robots(RobotsMode::Missing).await;
    assert_eq!(s.get("skipped: robots.txt disallowed"), 0);
    assert_eq!(n, 100);
    // 500: the host is skipped, nothing fetched.
    let (s, n, _) = crawl_gallery_with_robots(RobotsMode::ServerError).await;
    assert_eq!(s.get("skipped: host skipped (robots.txt unavailable)"), 1);
    assert_eq!((s.get(counter::PAGES), n), (0, 0));
    // 429: backed off, then the rules apply.
    let (s, n, t) = crawl_gallery_with_robots(RobotsMode::RateLimited).await;
    assert_eq!(s.get("skipped: robots.txt disallowed"), 1);
    assert_eq!(n, 100);
    assert!(t >= Duration::from_secs(1), "Retry-After honoured: {t:?}");
    // Crawl-delay: 1 s between requests to the host: 2 pages + 4 hazard links ≥ 5 s of gaps.
    let (s, n, t) = crawl_gallery_with_robots(RobotsMode::CrawlDelay).await;
    assert_eq!(n, 100);
    assert!(s.get(counter::PAGES) >= 2);
    assert!(t >= Duration::from_secs(4), "crawl-delay honoured: {t:?}");
}
