//! `etl curate` against a real catalog: output versions with lineage (raw_pairs version and
//! config hash), reruns, `--explain`, and a run killed mid-way leaving the previous
//! `negative_prompts_db` version intact.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use negopt_catalog::{At, Catalog, Commit};
use negopt_etl::curate::config::CurateConfig;
use negopt_etl::curate::synthetic::{self, Mix, RawRow, raw_batch, raw_pairs_schema};
use negopt_etl::curate::{curate_catalog, tables};

fn raw_rows(n: usize) -> Vec<RawRow> {
    synthetic::generate(
        n,
        Mix {
            exact: 0.3,
            near: 0.1,
        },
        2,
        7,
    )
    .into_iter()
    .map(|l| l.row)
    .collect()
}

async fn catalog_with_raw_pairs(dir: &Path, rows: &[RawRow]) -> (Catalog, u64) {
    let catalog = Catalog::open_or_create(dir).unwrap();
    catalog
        .create_table(tables::RAW_PAIRS, raw_pairs_schema())
        .await
        .unwrap();
    let version = catalog
        .append(
            tables::RAW_PAIRS,
            vec![raw_batch(rows)],
            Commit::new("test fixture"),
        )
        .await
        .unwrap();
    (catalog, version)
}

/// The table's rows as one sorted text table, to compare versions.
fn text_of(batches: &[RecordBatch]) -> String {
    let mut lines: Vec<String> = pretty_format_batches(batches)
        .unwrap()
        .to_string()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines.join("\n")
}

#[tokio::test]
async fn outputs_are_new_versions_with_lineage() {
    let dir = tempfile::tempdir().unwrap();
    let (catalog, raw_version) = catalog_with_raw_pairs(dir.path(), &raw_rows(600)).await;
    let config = CurateConfig::default();
    let (output, written) = curate_catalog(&catalog, &config, At::Latest, 2, |_| {})
        .await
        .unwrap();
    assert_eq!(written.raw_pairs, raw_version);
    let db = catalog.read(tables::DB, At::Latest).await.unwrap();
    let rows: usize = db.iter().map(RecordBatch::num_rows).sum();
    let expected: usize = output.db.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, expected);
    assert!(rows > 0);
    for table in [tables::DB, tables::REJECTS, tables::REPORT] {
        let history = catalog.history(table).await.unwrap();
        let last = history.last().unwrap();
        let commit = last.commit.as_ref().expect("negopt provenance");
        assert_eq!(commit.operation, "curate", "{table}");
        assert_eq!(commit.inputs.len(), 1);
        assert_eq!(commit.inputs[0].table, tables::RAW_PAIRS);
        assert_eq!(commit.inputs[0].version, raw_version);
        assert_eq!(commit.params["config_hash"], config.hash().as_str());
    }
    // A rerun is a new version with the same rows.
    let (_, again) = curate_catalog(&catalog, &config, At::Latest, 1, |_| {})
        .await
        .unwrap();
    assert_eq!(again.db, written.db + 1);
    let v1 = catalog
        .read(tables::DB, At::Version(written.db))
        .await
        .unwrap();
    let v2 = catalog.read(tables::DB, At::Latest).await.unwrap();
    assert_eq!(text_of(&v1), text_of(&v2));
}

fn etl(catalog: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_etl"));
    cmd.arg("--catalog").arg(catalog).arg("curate").args(args);
    cmd
}

#[tokio::test]
async fn explain_prints_every_stage_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    catalog_with_raw_pairs(dir.path(), &raw_rows(50)).await;
    let out = etl(dir.path(), &["--explain"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for stage in [
        "curate_checked",
        "curate_exact",
        "curate_candidates",
        "curate_edges",
        "curate_clusters",
        "curate_db",
    ] {
        assert!(
            text.contains(&format!("-- stage {stage}")),
            "{stage} missing"
        );
    }
    assert!(text.contains("lsh_bands") && text.contains("connected_components"));
    let catalog = Catalog::open(dir.path()).unwrap();
    assert!(
        !catalog
            .list_tables()
            .await
            .unwrap()
            .contains(&tables::DB.to_string())
    );
}

#[tokio::test]
async fn bad_config_is_exit_code_2_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("curate.toml");
    std::fs::write(&config, "[split]\ntrain = 0.5\nval = 0.1\ntest = 0.1\n").unwrap();
    let out = etl(dir.path(), &["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("etl: "), "{stderr}");
    assert!(stderr.contains("split ratios sum to"), "{stderr}");
}

#[tokio::test]
async fn killed_run_leaves_the_previous_version_and_a_rerun_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let (catalog, _) = catalog_with_raw_pairs(dir.path(), &raw_rows(4000)).await;
    let first = etl(dir.path(), &["--threads", "2"]).output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let baseline = text_of(&catalog.read(tables::DB, At::Latest).await.unwrap());
    // Kill runs at several points; whatever point is hit (planning, a stage, a write), the
    // latest DB version must read back whole and equal the baseline (same input and config).
    for delay_ms in [150, 600, 1500, 3000] {
        let mut child = etl(dir.path(), &["--threads", "2"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let latest = catalog.read(tables::DB, At::Latest).await.unwrap();
        assert_eq!(text_of(&latest), baseline, "after a kill at {delay_ms} ms");
    }
    let rerun = etl(dir.path(), &[]).output().unwrap();
    assert!(
        rerun.status.success(),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    let summary = String::from_utf8(rerun.stdout).unwrap();
    assert!(
        summary.contains("raw pairs in") && summary.contains("wrote negative_prompts_db"),
        "{summary}"
    );
    assert_eq!(
        text_of(&catalog.read(tables::DB, At::Latest).await.unwrap()),
        baseline
    );
}
