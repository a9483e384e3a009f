//! Every source, crawled cleanly: the stored records equal the fixture's, field for field.

use negopt_etl::crawl::Resume;
use negopt_etl::crawl::counter;
use negopt_etl::fixtures::{FixtureConfig, FixtureSource};

use super::{assert_exact, crawl_into, crawl_with, start, stored, test_fetch_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_every_source_stores_exact_records() {
    let config = FixtureConfig::new(11, 450);
    let server = start(config.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let summary = crawl_into(
        &server,
        dir.path(),
        &["civitai", "playground", "gallery", "a1111"],
        test_fetch_config(),
        Resume::Fresh,
    )
    .await;
    for source in FixtureSource::ALL {
        assert_exact(dir.path(), &server, &config, source).await;
    }
    // 450 items: civitai drops null/absent meta (2 in 10), playground drops 0 likes (1 in 7).
    assert_eq!(summary.get("dropped: no prompt"), 90);
    assert_eq!(summary.get("dropped: below min likes"), 65);
    // pages: civitai 3, playground 3, gallery 9, a1111 5 indexes + 450 images
    assert_eq!(summary.get(counter::PAGES), 3 + 3 + 9 + 5 + 450);
    assert_eq!(summary.get(counter::RETRIES), 0);
    assert_eq!(summary.get(counter::PARSE_ERRORS), 0);

    // Duplicates across pages and sources are stored as the sources show them (curation
    // dedups): item 97 has one text in every source, item 49 repeats item 42's.
    let (civitai, gallery) = (
        stored(dir.path(), "civitai").await,
        stored(dir.path(), "gallery").await,
    );
    assert_eq!(civitai["1000097"].prompt, gallery["g97"].prompt);
    assert_eq!(gallery["g49"].prompt, gallery["g42"].prompt);
    // Missing and empty negatives stay distinct.
    assert!(gallery.values().any(|r| r.negative_prompt.is_none()));
    assert!(
        gallery
            .values()
            .any(|r| r.negative_prompt.as_deref() == Some(""))
    );

    // A second crawl of the same data updates (upserts) instead of duplicating, and stores no
    // unchanged page twice.
    let again = crawl_into(
        &server,
        dir.path(),
        &["civitai"],
        test_fetch_config(),
        Resume::Fresh,
    )
    .await;
    assert_eq!(again.get(counter::PAIRS_NEW), 0);
    assert_eq!(again.get(counter::PAIRS_UPDATED), 360);
    assert_eq!(again.get(counter::PAGES_UNCHANGED), 3);
    assert_exact(dir.path(), &server, &config, FixtureSource::Civitai).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_stops_at_max_pages_and_max_items() {
    let server = start(FixtureConfig::new(3, 1000)).await;
    let dir = tempfile::tempdir().unwrap();
    let s = crawl_with(
        &server,
        dir.path(),
        &["playground"],
        test_fetch_config(),
        Resume::Fresh,
        |c| c.max_pages = Some(2),
    )
    .await;
    assert_eq!(s.get(counter::PAGES), 2, "{:?}", s.counters);
    // two pages of 200, minus the rows with no likes (i % 7 == 0: 58 of 400)
    assert_eq!(
        stored(dir.path(), "playground").await.len(),
        400 - 58,
        "{:?}",
        s.counters
    );

    let dir = tempfile::tempdir().unwrap();
    let s = crawl_with(
        &server,
        dir.path(),
        &["playground"],
        test_fetch_config(),
        Resume::Fresh,
        |c| c.max_items = Some(250),
    )
    .await;
    assert_eq!(s.get(counter::PAIRS_NEW), 250);
    assert_eq!(stored(dir.path(), "playground").await.len(), 250);
}

/// The README's command: `etl crawl --fixtures` starts its own fixture server and crawls it.
#[test]
fn crawl_cli_with_fixtures_needs_no_network() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_etl"))
        .args(["--catalog"])
        .arg(dir.path().join("npdb"))
        .args(["crawl", "--fixtures", "--fixture-items", "300"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 300 per source: civitai 240 + playground 257 + gallery 300 + a1111 300
    let new = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("pairs new"))
        .map(|n| n.trim().parse::<u64>().unwrap());
    assert_eq!(new, Some(240 + 257 + 300 + 300), "{stdout}");

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_etl"))
        .args([
            "crawl",
            "--sources",
            "nowhere",
            "--base-url",
            "nowhere=http://127.0.0.1:9/",
        ])
        .arg("--catalog")
        .arg(dir.path().join("npdb2"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.starts_with("etl: crawl: unknown source `nowhere`"),
        "{stderr}"
    );
}
