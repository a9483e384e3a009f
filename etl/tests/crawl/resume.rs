//! Kill -9 in the middle of a 20,000-item crawl (the `etl` binary), then `--resume`: the stored
//! set equals a clean crawl's, with no item lost and none stored twice.

use std::collections::HashSet;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use negopt_catalog::{At, Catalog};
use negopt_etl::crawl::output::RAW_PAGES;
use negopt_etl::fixtures::{FixtureConfig, FixtureSource};

use super::{assert_exact, start, stored};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_kill_9_then_resume_equals_clean_crawl() {
    let config = FixtureConfig::new(21, 10_000); // two sources: 20,000 items
    let server = start(config.clone()).await;
    let base = server.base_url();
    let dir = tempfile::tempdir().unwrap();
    let catalog_dir = dir.path().join("npdb");
    let etl = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_etl"));
        cmd.args(["crawl", "--catalog"])
            .arg(&catalog_dir)
            .args([
                "--sources",
                "civitai,playground",
                "--allow-private",
                "--rate",
                "100000",
            ])
            .args(["--batch-items", "1000", "--concurrency", "4"])
            .args(["--base-url", &format!("civitai={base}")])
            .args(["--base-url", &format!("playground={base}")])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };

    let mut child = etl(&[]).spawn().expect("etl starts");
    let checkpoint = catalog_dir.join("crawl.checkpoint");
    let t = Instant::now();
    while !checkpoint.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "no checkpoint written"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "crawl ended before it could be killed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().expect("SIGKILL delivered"); // std sends SIGKILL on Unix
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the crawl was killed mid-way, not finished"
    );
    let partial = stored(&catalog_dir, "civitai").await.len()
        + stored(&catalog_dir, "playground").await.len();
    assert!(
        partial > 0 && partial < 15_000,
        "killed mid-way: {partial} stored"
    );

    let mut resume = etl(&["--resume"]);
    let resumed = tokio::task::spawn_blocking(move || resume.status())
        .await
        .unwrap()
        .unwrap();
    assert!(resumed.success(), "resume exits 0");

    assert_exact(&catalog_dir, &server, &config, FixtureSource::Civitai).await;
    assert_exact(&catalog_dir, &server, &config, FixtureSource::Playground).await;
    // Pages too: each (url, body) once — 50 civitai + 50 playground pages.
    let catalog = Catalog::open(&catalog_dir).unwrap();
    let mut keys = HashSet::new();
    let mut rows = 0;
    for b in catalog.read(RAW_PAGES, At::Latest).await.unwrap() {
        let cast = |n: &str| {
            arrow::compute::cast(
                b.column_by_name(n).unwrap(),
                &arrow::datatypes::DataType::Utf8,
            )
            .unwrap()
        };
        let (url, sha) = (cast("url"), cast("sha256"));
        let (url, sha) = (
            arrow::array::as_string_array(&url),
            arrow::array::as_string_array(&sha),
        );
        for i in 0..b.num_rows() {
            keys.insert((url.value(i).to_string(), sha.value(i).to_string()));
            rows += 1;
        }
    }
    assert_eq!((rows, keys.len()), (100, 100));
}
