//! A writer killed with SIGKILL in the middle of a large append leaves the previous version
//! readable with exactly its rows, and the next append works.
//!
//! The writer is this test binary run again as a subprocess on the ignored test `crash::writer`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use negopt_catalog::{At, Catalog, Commit};

use crate::common::{batch, catalog, expected, rows, schema};

const CHILD_ENV: &str = "NEGOPT_TEST_CRASH_CATALOG";

/// The subprocess: appends a large set of batches to `pairs`. Does nothing unless run by the parent.
#[tokio::test]
#[ignore = "run as a subprocess by killed_writer_leaves_previous_version"]
async fn writer() {
    let Some(root) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let cat = Catalog::open(root).unwrap();
    let batches: Vec<_> = (0..200)
        .map(|i| batch(1_000_000 + i * 20_000, 20_000))
        .collect();
    println!("WRITING");
    cat.append("pairs", batches, Commit::new("big"))
        .await
        .unwrap();
    println!("DONE");
}

#[tokio::test]
async fn killed_writer_leaves_previous_version() {
    let (_dir, cat) = catalog();
    cat.create_table("pairs", schema()).await.unwrap();
    cat.append("pairs", vec![batch(0, 100)], Commit::new("small"))
        .await
        .unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash::writer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, cat.root())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("writer exited before writing").unwrap();
        if line.contains("WRITING") {
            break;
        }
    }
    // Let it write some data files, then kill it before it can commit 4M rows.
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    assert!(
        !lines.any(|l| l.unwrap().contains("DONE")),
        "the writer finished before it was killed"
    );

    assert_eq!(cat.latest_version("pairs").await.unwrap(), 1);
    assert_eq!(
        rows(&cat.read("pairs", At::Latest).await.unwrap()),
        expected(&[(0, 100)])
    );
    cat.append("pairs", vec![batch(100, 5)], Commit::new("after"))
        .await
        .unwrap();
    assert_eq!(
        rows(&cat.read("pairs", At::Latest).await.unwrap()),
        expected(&[(0, 105)])
    );
}
