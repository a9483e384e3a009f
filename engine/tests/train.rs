//! SFT end to end on small synthetic tables: learning (val loss falls, tag-set F1 beats the
//! most-common-negative baseline), `train_metrics` in the catalog, the loss curve, clear errors
//! on an empty split, and `--resume` after `kill -9` reproducing the uninterrupted run exactly.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use negopt_catalog::{At, Catalog, Commit};
use negopt_engine::checkpoint::load_model;
use negopt_engine::data::{MemorySource, Split, block_on, read_pairs};
use negopt_engine::device::Device;
use negopt_engine::eval::evaluate_sft;
use negopt_engine::metrics::MetricLog;
use negopt_engine::train::{Progress, Resume, TrainConfig, run};

const STYLES: [(&str, &str); 4] = [
    ("photo", "cartoon, drawing, blurry, lowres"),
    ("anime", "realistic, photo, bad anatomy, lowres"),
    ("oil painting", "photo, 3d render, watermark"),
    ("pixel art", "blurry, smooth, photo, text"),
];
const SUBJECTS: [&str; 6] = ["cat", "dog", "castle", "robot", "flower", "ship"];
const COLOURS: [&str; 4] = ["red", "blue", "green", "golden"];

/// Rows `(prompt, negative_prompt, split)`: the negative depends on the prompt's style.
fn synthetic_batch(n: usize) -> RecordBatch {
    let (mut p, mut neg, mut split) = (vec![], vec![], vec![]);
    for i in 0..n {
        let (style, negative) = STYLES[(i / 3) % 4];
        p.push(format!(
            "a {} {}, {style}",
            COLOURS[i % 4],
            SUBJECTS[(i / 4) % 6]
        ));
        neg.push(negative.to_string());
        split.push(match i % 10 {
            8 => "val",
            9 => "test",
            _ => "train",
        });
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("prompt", DataType::Utf8, false),
        Field::new("negative_prompt", DataType::Utf8, true),
        Field::new("split", DataType::Utf8, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(p)),
            Arc::new(StringArray::from(neg)),
            Arc::new(StringArray::from(split)),
        ],
    )
    .unwrap()
}

const CONFIG: &str = r#"
[data]
max_source_len = 24
max_target_len = 24
[model]
config = "tiny"
vocab_size = 120
[train]
seed = 5
steps = 80
batch_size = 16
lr = 5e-3
warmup_steps = 8
eval_every = 20
eval_batches = 4
checkpoint_every = 40
"#;

#[test]
fn sft_learns_synthetic_pairs_and_beats_the_baseline() {
    let be = Device::Cpu.backend().unwrap();
    let cfg: TrainConfig = toml::from_str(CONFIG).unwrap();
    let source = MemorySource(vec![synthetic_batch(400)]);
    let dir = tempfile::tempdir().unwrap();
    let s = run(
        &*be,
        &cfg,
        &source,
        None,
        dir.path(),
        Resume::Fresh,
        Progress::Quiet,
    )
    .unwrap();
    let (first, last) = s.val_loss.unwrap();
    assert!(last < 0.5 * first, "val loss {first} -> {last}");
    let (model, tok) = load_model(&*be, &s.checkpoint).unwrap();
    let r = evaluate_sft(&*be, &model, &tok, &source, 24, 24, 16).unwrap();
    assert!(
        r.model_f1 > r.baseline_f1 + 0.2,
        "model F1 {} vs baseline {}",
        r.model_f1,
        r.baseline_f1
    );
    assert!(r.perplexity.is_finite() && r.perplexity > 1.0);
    assert!(dir.path().join("loss.png").is_file());
    let png = std::fs::read(dir.path().join("loss.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    // A second fresh run into the same directory is refused, not silently mixed.
    let err = run(
        &*be,
        &cfg,
        &source,
        None,
        dir.path(),
        Resume::Fresh,
        Progress::Quiet,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("--resume"), "{err}");
}

#[test]
fn empty_split_and_missing_columns_are_clear_errors() {
    let batch = synthetic_batch(8); // rows 0..8: no test row (i % 10 == 9)
    let err = read_pairs(&MemorySource(vec![batch.clone()]), Split::Test)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("split `test`") && err.contains("no usable rows"),
        "{err}"
    );
    let no_split = batch.project(&[0, 1]).unwrap();
    let err = read_pairs(&MemorySource(vec![no_split]), Split::Train)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`split` column"), "{err}");
}

fn write_catalog(root: &Path) -> Catalog {
    let catalog = Catalog::open_or_create(root).unwrap();
    let batch = synthetic_batch(400);
    block_on(catalog.create_table("negative_prompts_db", batch.schema()))
        .unwrap()
        .unwrap();
    block_on(catalog.append(
        "negative_prompts_db",
        vec![batch],
        Commit::new("test fixture"),
    ))
    .unwrap()
    .unwrap();
    catalog
}

fn engine(catalog: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_engine"));
    cmd.args(["--threads", "2", "--device", "cpu", "--catalog"])
        .arg(catalog)
        .args(args);
    cmd
}

/// `engine train --stage sft --quiet --config CONFIG --run-dir RUN_DIR` plus `extra` flags.
fn train_sft(catalog: &Path, config: &str, run_dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = engine(catalog, &["train", "--stage", "sft", "--quiet"]);
    cmd.args(extra)
        .args(["--config", config, "--run-dir"])
        .arg(run_dir);
    cmd
}

fn train_losses(run_dir: &Path) -> Vec<(u64, f64)> {
    MetricLog::open(run_dir, u64::MAX)
        .unwrap()
        .series("train", "loss")
}

#[test]
fn resume_after_kill_9_reproduces_the_uninterrupted_loss_curve() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog_dir = tmp.path().join("npdb");
    let catalog = write_catalog(&catalog_dir);
    // Both runs share one trained tokenizer file, as the README's flow does.
    let tokenizer = tmp.path().join("tokenizer.json");
    let out = engine(
        &catalog_dir,
        &[
            "tokenizer",
            "train",
            "--vocab-size",
            "120",
            "--out",
            tokenizer.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = tmp.path().join("sft.toml");
    let text = CONFIG
        .replace("steps = 80", "steps = 40")
        .replace("checkpoint_every = 40", "checkpoint_every = 4")
        .replace(
            "vocab_size = 120",
            &format!("tokenizer = {:?}", tokenizer.to_str().unwrap()),
        );
    std::fs::write(&config, text).unwrap();
    let cfg = config.to_str().unwrap();

    let whole = tmp.path().join("whole");
    let status = train_sft(&catalog_dir, cfg, &whole, &[]).status().unwrap();
    assert!(status.success());

    let killed = tmp.path().join("killed");
    let mut child = train_sft(&catalog_dir, cfg, &killed, &[]).spawn().unwrap();
    let first = killed.join("checkpoints/step-000004");
    let deadline = Instant::now() + Duration::from_secs(300);
    while !first.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap(); // SIGKILL
    let st = child.wait().unwrap();
    assert!(
        st.code().is_none(),
        "the run was killed mid-way, not finished ({st})"
    );
    let status = train_sft(&catalog_dir, cfg, &killed, &["--resume"])
        .status()
        .unwrap();
    assert!(status.success());

    // `--seed` overrides the config's seed, and a resume with another seed than the run's is
    // refused (it would not continue the same run).
    let out = train_sft(&catalog_dir, cfg, &killed, &["--resume", "--seed", "6"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("was trained with seed 5, but this run's seed is 6")
            && err.contains("help: resume with --seed 5"),
        "{err}"
    );

    let (a, b) = (train_losses(&whole), train_losses(&killed));
    assert_eq!(a.len(), 40);
    assert_eq!(a, b, "loss curves differ after resume");
    let weights =
        |d: &Path| std::fs::read(d.join("checkpoints/step-000040/model.safetensors")).unwrap();
    assert_eq!(weights(&whole), weights(&killed), "final weights differ");

    // Metrics reached the catalog, once per step and run (no rows from the killed tail).
    let batches = block_on(catalog.read("train_metrics", At::Latest))
        .unwrap()
        .unwrap();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let per_run = MetricLog::open(&whole, u64::MAX).unwrap().rows().len();
    assert_eq!(rows, 2 * per_run);

    // generate and eval run on the result.
    let out = engine(
        &catalog_dir,
        &[
            "generate",
            "--checkpoint",
            whole.to_str().unwrap(),
            "--beams",
            "2",
            "a red cat, anime",
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("negative:"));
    let out = engine(
        &catalog_dir,
        &[
            "eval",
            "--stage",
            "sft",
            "--checkpoint",
            whole.to_str().unwrap(),
            "--config",
            cfg,
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("perplexity"));
    let out = Command::new(env!("CARGO_BIN_EXE_engine"))
        .args([
            "--device",
            "cuda",
            "generate",
            "--checkpoint",
            whole.to_str().unwrap(),
            "x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("engine: device cuda is not available"),
        "{err}"
    );
}
