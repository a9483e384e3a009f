//! The README's main job end to end, through the code the binaries run: `etl crawl --fixtures`
//! (a fixture server on 127.0.0.1) → `etl curate` → `sql`. Checks the contracts between the
//! stages: every raw pair is either kept or rejected with a reason, the curated table's lineage
//! names the raw version it read, no near-duplicate cluster crosses splits, a second curation of
//! the same input gives the same rows, and the README's example queries run on the result.

use std::process::ExitCode;

use negopt_catalog::{Catalog, Input};
use negopt_sql::Outcome;
use negopt_sql::examples::EXAMPLES;
use negopt_tests::{etl, scalar, sql};

fn success(code: ExitCode) {
    assert_eq!(format!("{code:?}"), format!("{:?}", ExitCode::SUCCESS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_curate_and_query_the_fixture_sources() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("npdb");
    success(
        etl(&root, &["crawl", "--fixtures", "--fixture-items", "300"])
            .await
            .unwrap(),
    );
    success(etl(&root, &["curate", "--threads", "2"]).await.unwrap());

    let mut s = sql(&root).await;
    let raw = scalar(&mut s, "SELECT count(*) FROM raw_pairs").await;
    let kept = scalar(&mut s, "SELECT count(*) FROM negative_prompts_db").await;
    let rejected = scalar(&mut s, "SELECT count(*) FROM curation_rejects").await;
    assert!(raw >= 1_000, "every fixture source gave pairs: {raw}");
    assert!(kept > 0 && rejected > 0, "kept {kept}, rejected {rejected}");
    assert_eq!(raw, kept + rejected, "every raw pair is kept or rejected");
    let no_reason = "SELECT count(*) FROM curation_rejects WHERE reason IS NULL OR stage = ''";
    assert_eq!(scalar(&mut s, no_reason).await, 0);
    let blank = "SELECT count(*) FROM negative_prompts_db \
                 WHERE negative_prompt IS NULL OR trim(negative_prompt) = ''";
    assert_eq!(scalar(&mut s, blank).await, 0);
    let splits = "SELECT count(DISTINCT split) FROM negative_prompts_db";
    assert_eq!(scalar(&mut s, splits).await, 3);
    let crossing = "SELECT count(*) FROM (SELECT cluster_id FROM negative_prompts_db \
                    GROUP BY cluster_id HAVING count(DISTINCT split) > 1)";
    assert_eq!(scalar(&mut s, crossing).await, 0);

    let catalog = Catalog::open(&root).unwrap();
    let raw_version = catalog.latest_version("raw_pairs").await.unwrap();
    let history = catalog.history("negative_prompts_db").await.unwrap();
    let last = history.last().unwrap().commit.clone().unwrap();
    assert!(
        last.inputs.contains(&Input {
            table: "raw_pairs".into(),
            version: raw_version
        }),
        "{last:?}"
    );

    for example in EXAMPLES {
        match s.execute(example.sql).await {
            Ok(Outcome::Rows { batches, .. }) => {
                let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
                assert!(rows > 0, "example {:?} gave no row", example.name);
            }
            other => panic!("example {:?}: {other:?}", example.name),
        }
    }

    // The same input and config again: a new version with the same rows, ids and splits.
    success(etl(&root, &["curate", "--threads", "1"]).await.unwrap());
    let mut s = sql(&root).await;
    let first = history.last().unwrap().version;
    let columns = "id, prompt, negative_prompt, cluster_id, split";
    let differ = format!(
        "SELECT count(*) FROM ((SELECT {columns} FROM negative_prompts_db \
         EXCEPT SELECT {columns} FROM table_at('negative_prompts_db', {first})) \
         UNION ALL (SELECT {columns} FROM table_at('negative_prompts_db', {first}) \
         EXCEPT SELECT {columns} FROM negative_prompts_db))"
    );
    assert_eq!(scalar(&mut s, &differ).await, 0);
    assert_eq!(
        scalar(&mut s, "SELECT count(*) FROM negative_prompts_db").await,
        kept
    );
}
