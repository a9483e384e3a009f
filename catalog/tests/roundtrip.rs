//! Create / append / overwrite / upsert / time travel with exact row contents, lineage, and
//! concurrent appenders.

use negopt_catalog::{At, CatalogError, Commit};
use serde_json::json;

use crate::common::{batch, catalog, expected, rows, schema};

#[tokio::test]
async fn versions_round_trip_with_exact_rows() {
    let (_dir, cat) = catalog();
    assert_eq!(cat.create_table("pairs", schema()).await.unwrap(), 0);
    assert_eq!(
        cat.append("pairs", vec![batch(0, 10)], Commit::new("t"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        cat.append("pairs", vec![batch(10, 5), batch(15, 3)], Commit::new("t"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        cat.overwrite("pairs", vec![batch(100, 4)], Commit::new("t"))
            .await
            .unwrap(),
        3
    );

    assert!(rows(&cat.read("pairs", At::Version(0)).await.unwrap()).is_empty());
    assert_eq!(
        rows(&cat.read("pairs", At::Version(1)).await.unwrap()),
        expected(&[(0, 10)])
    );
    assert_eq!(
        rows(&cat.read("pairs", At::Version(2)).await.unwrap()),
        expected(&[(0, 18)])
    );
    assert_eq!(
        rows(&cat.read("pairs", At::Latest).await.unwrap()),
        expected(&[(100, 4)])
    );
    assert_eq!(cat.latest_version("pairs").await.unwrap(), 3);
    assert_eq!(cat.list_tables().await.unwrap(), vec!["pairs".to_string()]);
}

#[tokio::test]
async fn time_travel_by_timestamp() {
    let (_dir, cat) = catalog();
    cat.create_table("pairs", schema()).await.unwrap();
    cat.append("pairs", vec![batch(0, 3)], Commit::new("t"))
        .await
        .unwrap();
    // Commit times have millisecond resolution.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let between = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    cat.append("pairs", vec![batch(3, 2)], Commit::new("t"))
        .await
        .unwrap();

    let then = cat.read("pairs", At::Timestamp(between)).await.unwrap();
    assert_eq!(rows(&then), expected(&[(0, 3)]));
    let now = cat
        .read("pairs", At::Timestamp(chrono::Utc::now()))
        .await
        .unwrap();
    assert_eq!(rows(&now), expected(&[(0, 5)]));
    let before = chrono::DateTime::from_timestamp(0, 0).unwrap();
    let err = cat.read("pairs", At::Timestamp(before)).await.unwrap_err();
    assert!(matches!(err, CatalogError::NoVersionAtTime { .. }), "{err}");
}

/// A timestamp names the version `history` shows as committed at or before it, whatever the log
/// files' modification times say (a copied catalog has new ones).
#[tokio::test]
async fn timestamps_resolve_by_the_commit_times_history_shows() {
    let (_dir, cat) = catalog();
    cat.create_table("pairs", schema()).await.unwrap();
    for i in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        cat.append("pairs", vec![batch(i * 10, 1)], Commit::new("t"))
            .await
            .unwrap();
    }
    // As `cp -r` would: every log file modified now.
    let log = cat.root().join("pairs/_delta_log");
    let now = std::time::SystemTime::now();
    for entry in std::fs::read_dir(&log).unwrap() {
        let file = std::fs::File::options()
            .append(true)
            .open(entry.unwrap().path())
            .unwrap();
        file.set_modified(now).unwrap();
    }
    let history = cat.history("pairs").await.unwrap();
    assert_eq!(history.len(), 4);
    for (record, rows_then) in history.iter().zip([0usize, 1, 2, 3]) {
        let at = At::Timestamp(record.timestamp);
        let read = cat.read("pairs", at).await.unwrap();
        assert_eq!(
            rows(&read).len(),
            rows_then,
            "at {at} (version {})",
            record.version
        );
        if record.version > 0 {
            let just_before = record.timestamp - chrono::Duration::milliseconds(1);
            let read = cat.read("pairs", At::Timestamp(just_before)).await.unwrap();
            assert_eq!(
                rows(&read).len(),
                rows_then - 1,
                "just before version {}",
                record.version
            );
        }
    }
}

#[tokio::test]
async fn lineage_and_params_are_read_back() {
    let (_dir, cat) = catalog();
    cat.create_table("raw_pairs", schema()).await.unwrap();
    cat.append(
        "raw_pairs",
        vec![batch(0, 2)],
        Commit::new("crawl").with_params(json!({"pages": 3})),
    )
    .await
    .unwrap();
    cat.create_table("db", schema()).await.unwrap();
    let commit = Commit::new("curate")
        .with_params(json!({"config_hash": "abc123", "threshold": 0.8}))
        .with_input("raw_pairs", 1);
    cat.overwrite("db", vec![batch(0, 1)], commit.clone())
        .await
        .unwrap();

    let history = cat.history("db").await.unwrap();
    assert_eq!(
        history.iter().map(|c| c.version).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(history[0].commit.as_ref().unwrap().operation, "create");
    assert_eq!(history[1].commit.as_ref(), Some(&commit));
    assert!(history[0].timestamp <= history[1].timestamp);
    let raw = cat.history("raw_pairs").await.unwrap();
    assert_eq!(raw[1].commit.as_ref().unwrap().params, json!({"pages": 3}));
}

#[tokio::test]
async fn upsert_replaces_matching_keys_and_inserts_new_ones() {
    let (_dir, cat) = catalog();
    cat.create_table("pairs", schema()).await.unwrap();
    cat.append("pairs", vec![batch(0, 5)], Commit::new("crawl"))
        .await
        .unwrap();
    // ids 3..8: 3 and 4 exist (replaced with new contents), 5..8 are new.
    let mut update = batch(3, 5);
    update = arrow::array::RecordBatch::try_new(
        update.schema(),
        vec![
            update.column(0).clone(),
            std::sync::Arc::new(arrow::array::StringArray::from(vec![
                "u3", "u4", "u5", "u6", "u7",
            ])),
            update.column(2).clone(),
        ],
    )
    .unwrap();
    let v = cat
        .upsert("pairs", vec![update], &["id"], Commit::new("crawl"))
        .await
        .unwrap();
    assert_eq!(v, 2);
    let got = rows(&cat.read("pairs", At::Latest).await.unwrap());
    let names: Vec<&str> = got.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(names, vec!["p0", "p1", "p2", "u3", "u4", "u5", "u6", "u7"]);
    let err = cat
        .upsert("pairs", vec![batch(0, 1)], &["nope"], Commit::new("x"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("upsert key \"nope\" is not a column"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_lose_no_rows() {
    let (_dir, cat) = catalog();
    cat.create_table("pairs", schema()).await.unwrap();
    const WRITERS: i64 = 2;
    const APPENDS: i64 = 8;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let cat = cat.clone();
        tasks.push(tokio::spawn(async move {
            for a in 0..APPENDS {
                let start = (w * APPENDS + a) * 10;
                // A loser whose retries ran out gets a Conflict error: retry it, as its help says.
                loop {
                    match cat
                        .append("pairs", vec![batch(start, 10)], Commit::new("t"))
                        .await
                    {
                        Ok(_) => break,
                        Err(CatalogError::Conflict { .. }) => continue,
                        Err(e) => panic!("append failed: {e}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        cat.latest_version("pairs").await.unwrap(),
        (WRITERS * APPENDS) as u64
    );
    let got = rows(&cat.read("pairs", At::Latest).await.unwrap());
    assert_eq!(got, expected(&[(0, WRITERS * APPENDS * 10)]));
}

#[tokio::test]
async fn rows_appended_right_after_ensure_table_are_read() {
    let (_dir, cat) = catalog();
    cat.ensure_table("metrics", schema()).await.unwrap();
    cat.append("metrics", vec![batch(0, 3)], Commit::new("flush"))
        .await
        .unwrap();
    assert_eq!(
        rows(&cat.read("metrics", At::Latest).await.unwrap()),
        expected(&[(0, 3)])
    );
    cat.ensure_table("metrics", schema()).await.unwrap();
    cat.upsert("metrics", vec![batch(3, 2)], &["id"], Commit::new("flush"))
        .await
        .unwrap();
    assert_eq!(
        rows(&cat.read("metrics", At::Latest).await.unwrap()),
        expected(&[(0, 5)])
    );
}
