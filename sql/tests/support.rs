//! Test fixtures: a small catalog on disk, and runners for the `sql` binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use negopt_catalog::{Catalog, Commit};

/// A temporary catalog with two tables:
///
/// `pairs` (id, prompt, negative_prompt, model):
///   v0 created empty, v1 appends ids 1 and 2, v2 appends id 3 (empty negative, NULL model);
/// `notes` (note): v0 created, v1 appends one row.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

pub fn pairs_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("prompt", DataType::Utf8, true),
        Field::new("negative_prompt", DataType::Utf8, true),
        Field::new("model", DataType::Utf8, true),
    ]))
}

fn pairs(rows: &[(i64, &str, &str, Option<&str>)]) -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.3).collect::<Vec<_>>(),
        )),
    ];
    RecordBatch::try_new(pairs_schema(), columns).unwrap()
}

pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open_or_create(dir.path()).unwrap();
        block_on(async {
            catalog.create_table("pairs", pairs_schema()).await.unwrap();
            let v1 = pairs(&[
                (1, "a cat", "lowres, (blurry:1.2)", Some("sd15")),
                (2, "a dog", "EasyNegative, lowres", Some("sdxl")),
            ]);
            catalog
                .append(
                    "pairs",
                    vec![v1],
                    Commit::new("crawl").with_params(serde_json::json!({"page": 1})),
                )
                .await
                .unwrap();
            // Commit times have millisecond resolution: keep v1 and v2 apart for time travel.
            std::thread::sleep(std::time::Duration::from_millis(30));
            let v2 = pairs(&[(3, "a fox", "", None)]);
            catalog
                .append(
                    "pairs",
                    vec![v2],
                    Commit::new("crawl").with_input("notes", 1),
                )
                .await
                .unwrap();
            let notes_schema =
                Arc::new(Schema::new(vec![Field::new("note", DataType::Utf8, true)]));
            catalog
                .create_table("notes", notes_schema.clone())
                .await
                .unwrap();
            let note = RecordBatch::try_new(
                notes_schema,
                vec![Arc::new(StringArray::from(vec!["hello"]))],
            )
            .unwrap();
            catalog
                .append("notes", vec![note], Commit::new("manual"))
                .await
                .unwrap();
        });
        Fixture { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn catalog(&self) -> Catalog {
        Catalog::open(self.path()).unwrap()
    }

    /// Runs `sql --catalog DIR --quiet? ARGS` with `stdin` as standard input.
    pub fn run(&self, args: &[&str], stdin: &str) -> Run {
        run_sql(self.path(), args, stdin)
    }

    /// Replaces the newest log entry of `table` with text that is not JSON.
    pub fn damage(&self, table: &str) {
        let log = self.path().join(table).join("_delta_log");
        let newest = std::fs::read_dir(&log)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .max()
            .unwrap();
        std::fs::write(newest, "{ this is not json").unwrap();
    }
}

/// What a run of the binary printed and returned.
#[derive(Debug)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

pub fn sql_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sql"))
}

pub fn run_sql(catalog: &Path, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(sql_binary())
        .arg("--catalog")
        .arg(catalog)
        .args(args)
        .env_remove("NEGOPT_CATALOG")
        // As users run it: with RUST_BACKTRACE set, Delta kernel errors carry backtraces.
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let Output {
        stdout,
        stderr,
        status,
    } = child.wait_with_output().unwrap();
    Run {
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
        code: status.code(),
    }
}
