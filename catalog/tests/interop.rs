//! An independent Delta reader (the Python `deltalake` package) reads what the catalog wrote:
//! latest and an older version, with identical rows.
//!
//! The interpreter is `$NEGOPT_PYTHON`, else `.venv/bin/python` at the workspace root (`.ci/run`
//! creates it). Without one the test says it skipped, except under CI, where it fails.

use std::path::PathBuf;
use std::process::Command;

use negopt_catalog::{At, Commit};

use crate::common::{batch, catalog, rows, schema};

fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("NEGOPT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"));
    let ok = Command::new(&candidate)
        .args(["-c", "import deltalake"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(candidate)
}

const READER: &str = r#"
import json, os, sys
from deltalake import DeltaTable
path, version = sys.argv[1], sys.argv[2]
dt = DeltaTable(path) if version == "latest" else DeltaTable(path, version=int(version))
rows = dt.to_pyarrow_table().to_pylist()
print(json.dumps(sorted([r["id"], r["prompt"], r["likes"]] for r in rows)), flush=True)
# Skip interpreter teardown: under load, native thread pools have aborted the process at exit
# ("terminate called without an active exception") after the answer was printed.
os._exit(0)
"#;

#[tokio::test]
async fn python_deltalake_reads_latest_and_older_versions() {
    let Some(python) = python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide Python deltalake (.venv); see .ci/run"
        );
        eprintln!(
            "SKIPPED python_deltalake_reads_latest_and_older_versions: no Python with `deltalake` (set NEGOPT_PYTHON or create .venv)"
        );
        return;
    };
    let (_dir, cat) = catalog();
    cat.create_table("pairs", schema()).await.unwrap();
    cat.append("pairs", vec![batch(0, 20)], Commit::new("t"))
        .await
        .unwrap();
    cat.append("pairs", vec![batch(20, 7)], Commit::new("t"))
        .await
        .unwrap();
    for (version, at) in [("latest", At::Latest), ("1", At::Version(1))] {
        let out = Command::new(&python)
            .args(["-c", READER])
            .arg(cat.root().join("pairs"))
            .arg(version)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: Vec<(i64, String, Option<i64>)> = serde_json::from_slice(&out.stdout).unwrap();
        let ours = rows(&cat.read("pairs", at).await.unwrap());
        assert_eq!(theirs, ours, "version {version}");
        assert!(!ours.is_empty());
    }
}
