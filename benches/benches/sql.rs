//! SQL benchmark: the README's example queries (`negopt_sql::examples::EXAMPLES`) over a
//! synthetic 1,000,000-row `negative_prompts_db`, through the `sql` shell's session on the Delta
//! catalog, and, as the peer, through a plain DataFusion context over the same rows held in memory
//! (`MemTable`, same UDFs) — the ratio is what reading the catalog's Delta table costs.
//!
//! Run: `cargo bench -p negopt-benches --bench sql` (set `NEGOPT_BENCH_ROWS` for a smaller table).
//! Building the table takes a minute; each query is sampled 10 times.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    ArrayRef, Float64Array, Int64Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use criterion::{Criterion, criterion_group, criterion_main};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use negopt_catalog::{Catalog, Commit};
use negopt_sql::examples::EXAMPLES;
use negopt_sql::{Access, Outcome, Session};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Rows in the synthetic table.
const DEFAULT_ROWS: usize = 1_000_000;
/// Rows per generated batch (and per Delta data file chunk).
const BATCH_ROWS: usize = 65_536;

const NEGATIVE_TAGS: &[&str] = &[
    "lowres",
    "bad anatomy",
    "bad hands",
    "text",
    "error",
    "missing fingers",
    "extra digit",
    "fewer digits",
    "cropped",
    "worst quality",
    "low quality",
    "normal quality",
    "jpeg artifacts",
    "signature",
    "watermark",
    "username",
    "blurry",
    "EasyNegative",
    "deformed",
    "ugly",
    "disfigured",
    "mutation",
    "extra limbs",
    "poorly drawn face",
    "poorly drawn hands",
    "out of frame",
    "duplicate",
    "morbid",
    "mutilated",
    "long neck",
    "bad proportions",
    "gross proportions",
    "malformed limbs",
    "missing arms",
    "missing legs",
    "extra arms",
    "extra legs",
    "fused fingers",
    "too many fingers",
    "cloned face",
    "grainy",
    "noisy",
    "oversaturated",
    "low contrast",
    "overexposed",
    "underexposed",
    "bad-hands-5",
    "badhandv4",
    "nsfw",
    "logo",
    "frame",
    "border",
    "tiling",
    "out of focus",
    "draft",
    "monochrome",
];
const SUBJECTS: &[&str] = &[
    "a cat",
    "a red fox",
    "a castle on a hill",
    "portrait of a woman",
    "a cyberpunk city",
    "a bowl of fruit",
    "a mountain lake",
    "an astronaut",
    "a dragon",
    "a cozy cabin",
];
const STYLES: &[&str] = &[
    "masterpiece",
    "best quality",
    "highly detailed",
    "8k",
    "oil painting",
    "digital art",
    "photorealistic",
    "cinematic lighting",
    "studio ghibli style",
    "trending on artstation",
];
const MODELS: &[&str] = &[
    "sd-1.5",
    "sdxl-1.0",
    "realistic-vision-v5",
    "dreamshaper-8",
    "anything-v5",
    "deliberate-v2",
    "juggernaut-xl",
    "playground-v2",
    "revanimated",
    "absolutereality",
];
const SAMPLERS: &[&str] = &[
    "Euler a",
    "Euler",
    "DPM++ 2M Karras",
    "DPM++ SDE Karras",
    "DDIM",
    "UniPC",
    "LMS",
    "Heun",
];
const SOURCES: &[&str] = &["playground", "civitai", "a1111_png", "html_gallery"];
const SPLITS: &[&str] = &[
    "train", "train", "train", "train", "train", "train", "train", "train", "val", "test",
];

/// The columns of curate's `negative_prompts_db` (see `etl/src/curate/plan.rs`, stage curate_db).
fn schema() -> SchemaRef {
    let list = || DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("prompt", DataType::Utf8, true),
        Field::new("negative_prompt", DataType::Utf8, true),
        Field::new("prompt_norm", DataType::Utf8, true),
        Field::new("negative_norm", DataType::Utf8, true),
        Field::new("prompt_tags", list(), true),
        Field::new("tags", list(), true),
        Field::new("source", DataType::Utf8, true),
        Field::new("item_id", DataType::Utf8, true),
        Field::new("url", DataType::Utf8, true),
        Field::new("model", DataType::Utf8, true),
        Field::new("sampler", DataType::Utf8, true),
        Field::new("steps", DataType::Int64, true),
        Field::new("cfg_scale", DataType::Float64, true),
        Field::new("width", DataType::Int64, true),
        Field::new("height", DataType::Int64, true),
        Field::new("likes", DataType::Int64, true),
        Field::new("created_at", utc, true),
        Field::new("cluster_id", DataType::Int64, true),
        Field::new("cluster_size", DataType::Int64, true),
        Field::new("split", DataType::Utf8, true),
        Field::new("flags", list(), true),
    ]))
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// A negative prompt of 3–24 tags, some with A1111 weights.
fn negative(rng: &mut StdRng) -> String {
    let n = rng.random_range(3..25);
    (0..n)
        .map(|_| {
            let tag = pick(rng, NEGATIVE_TAGS);
            if rng.random_bool(0.15) {
                format!("({tag}:1.{})", rng.random_range(1..5))
            } else {
                tag.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn tag_list(texts: &[String]) -> ArrayRef {
    let mut list = ListBuilder::new(StringBuilder::new());
    for text in texts {
        for tag in negopt_etl::canon::tags(text) {
            list.values().append_value(tag);
        }
        list.append(true);
    }
    Arc::new(list.finish())
}

/// Batch `index` of the synthetic table: deterministic in `index`.
fn batch(index: usize, rows: usize) -> RecordBatch {
    let mut rng = StdRng::seed_from_u64(index as u64);
    let first = (index * BATCH_ROWS) as i64;
    let prompts: Vec<String> = (0..rows)
        .map(|_| {
            format!(
                "{}, {}, {}",
                pick(&mut rng, SUBJECTS),
                pick(&mut rng, STYLES),
                pick(&mut rng, STYLES)
            )
        })
        .collect();
    let negatives: Vec<String> = (0..rows).map(|_| negative(&mut rng)).collect();
    let strings = |f: &mut dyn FnMut(usize) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values((0..rows).map(f)))
    };
    let ints = |f: &mut dyn FnMut(usize) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values((0..rows).map(f)))
    };
    // Near-duplicate clusters: most pairs alone, a tail of larger clusters.
    let sizes: Vec<i64> = (0..rows)
        .map(|_| {
            if rng.random_bool(0.8) {
                1
            } else {
                rng.random_range(2..40)
            }
        })
        .collect();
    let columns: Vec<ArrayRef> = vec![
        ints(&mut |i| first + i as i64),
        Arc::new(StringArray::from_iter_values(&prompts)),
        Arc::new(StringArray::from_iter_values(&negatives)),
        Arc::new(StringArray::from_iter_values(
            prompts.iter().map(|p| p.to_lowercase()),
        )),
        Arc::new(StringArray::from_iter_values(
            negatives.iter().map(|n| n.to_lowercase()),
        )),
        tag_list(&prompts),
        tag_list(&negatives),
        strings(&mut |_| pick(&mut rng, SOURCES).to_string()),
        strings(&mut |i| format!("item-{}", first + i as i64)),
        strings(&mut |i| format!("https://example.invalid/p/{}", first + i as i64)),
        strings(&mut |_| pick(&mut rng, MODELS).to_string()),
        strings(&mut |_| pick(&mut rng, SAMPLERS).to_string()),
        ints(&mut |_| rng.random_range(10..60)),
        Arc::new(Float64Array::from_iter_values(
            (0..rows).map(|_| rng.random_range(10..30) as f64 / 2.0),
        )),
        ints(&mut |_| 512),
        ints(&mut |_| 768),
        ints(&mut |_| rng.random_range(1..500)),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                (0..rows).map(|i| 1_700_000_000_000_000 + (first + i as i64) * 1_000_000),
            )
            .with_timezone("UTC"),
        ),
        ints(&mut |i| (first + i as i64) / 3),
        Arc::new(Int64Array::from(sizes)),
        strings(&mut |_| pick(&mut rng, SPLITS).to_string()),
        tag_list(&vec![String::new(); rows]),
    ];
    RecordBatch::try_new(schema(), columns).expect("columns match the schema")
}

fn batches(rows: usize) -> Vec<RecordBatch> {
    (0..rows.div_ceil(BATCH_ROWS))
        .map(|i| batch(i, BATCH_ROWS.min(rows - i * BATCH_ROWS)))
        .collect()
}

fn sql(c: &mut Criterion) {
    let rows = std::env::var("NEGOPT_BENCH_ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(DEFAULT_ROWS);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = batches(rows);

    let mut session = runtime.block_on(async {
        let catalog = Catalog::open_or_create(dir.path()).unwrap();
        catalog
            .create_table("negative_prompts_db", schema())
            .await
            .unwrap();
        catalog
            .append("negative_prompts_db", data.clone(), Commit::new("bench"))
            .await
            .unwrap();
        Session::open(catalog, Access::ReadOnly).await.unwrap()
    });
    let peer = SessionContext::new();
    negopt_sql::udf::register(&peer);
    peer.register_table(
        "negative_prompts_db",
        Arc::new(MemTable::try_new(schema(), vec![data]).unwrap()),
    )
    .unwrap();

    let mut group = c.benchmark_group("cpu_sql_delta");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    for example in EXAMPLES {
        group.bench_function(example.name, |b| {
            b.iter(
                || match runtime.block_on(session.execute(example.sql)).unwrap() {
                    Outcome::Rows { batches, .. } => batches,
                    other => panic!("{} returned {other:?}", example.name),
                },
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("cpu_sql_memtable");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    for example in EXAMPLES {
        group.bench_function(example.name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    peer.sql(example.sql)
                        .await
                        .unwrap()
                        .collect()
                        .await
                        .unwrap()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, sql);
criterion_main!(benches);
