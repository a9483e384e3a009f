//! The curate plan end to end on `raw_pairs` tables the tests build: every stage's effect on
//! hand-made rows, determinism across thread counts, no near duplicate across splits, and the
//! MinHash-LSH recall / precision on a labelled synthetic fixture.

use std::collections::{BTreeMap, HashMap};

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use negopt_etl::canon;
use negopt_etl::curate::config::{CurateConfig, DedupLevel};
use negopt_etl::curate::synthetic::{self, Mix, RawRow, raw_batch, raw_pairs_schema};
use negopt_etl::curate::{CurateOutput, curate_batches};

/// One output or reject row, as strings and numbers, for comparisons.
type Row = BTreeMap<String, String>;

fn rows_of(batches: &[RecordBatch]) -> Vec<Row> {
    let mut out = Vec::new();
    for batch in batches {
        let formatted: Vec<(String, Vec<String>)> = batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, c)| {
                let values = (0..c.len())
                    .map(|i| {
                        datafusion::arrow::util::display::array_value_to_string(c, i)
                            .expect("displayable")
                    })
                    .collect();
                (f.name().clone(), values)
            })
            .collect();
        for i in 0..batch.num_rows() {
            out.push(
                formatted
                    .iter()
                    .map(|(name, values)| (name.clone(), values[i].clone()))
                    .collect(),
            );
        }
    }
    out
}

async fn run(rows: &[RawRow], config: &CurateConfig, threads: usize) -> CurateOutput {
    curate_batches(vec![raw_batch(rows)], raw_pairs_schema(), config, threads)
        .await
        .expect("curate runs")
}

fn reasons(output: &CurateOutput) -> BTreeMap<String, String> {
    rows_of(&output.rejects)
        .into_iter()
        .map(|r| (r["item_id"].clone(), r["reason"].clone()))
        .collect()
}

fn kept(output: &CurateOutput) -> Vec<String> {
    let mut ids: Vec<String> = rows_of(&output.db)
        .into_iter()
        .map(|r| r["item_id"].clone())
        .collect();
    ids.sort();
    ids
}

fn row(id: &str, prompt: &str, negative: &str, likes: i64, created: i64) -> RawRow {
    RawRow {
        likes,
        created_at_us: created,
        ..RawRow::new("s", id, prompt, negative)
    }
}

const NEG: &str = "lowres, blurry, watermark, bad anatomy, jpeg artifacts";

fn hand_made() -> Vec<RawRow> {
    vec![
        row("ok", "a lighthouse on a cliff at sunset", NEG, 5, 10),
        row("empty", "a red fox in the snow", "", 1, 1),
        row("same", "lowres, blurry", "(Blurry:1.2), lowres", 1, 1),
        row(
            "url",
            "a quiet harbor at dawn",
            "https://example.com/neg",
            1,
            1,
        ),
        row(
            "french",
            "un chat noir assis sur une chaise dans la cuisine",
            "flou, mauvaise qualité",
            1,
            1,
        ),
        // Exact duplicates of one pair: the most liked wins, ties go to the earliest.
        row("dup-a", "masterpiece, 1girl, solo, smile", NEG, 3, 50),
        row("dup-b", "(1girl:1.2), SOLO, smile, masterpiece", NEG, 9, 70),
        row(
            "dup-c",
            "smile, solo, 1girl, masterpiece <lora:x:0.5>",
            NEG,
            9,
            60,
        ),
        // Near duplicates: one prompt tag more (jp = 4/5 = 0.8).
        row("near-a", "old sailor, portrait, pipe, beard", NEG, 2, 5),
        row(
            "near-b",
            "old sailor, portrait, pipe, beard, oil painting",
            NEG,
            4,
            5,
        ),
        // Same boilerplate negative, different prompt: not a near duplicate.
        row("other", "a cat, sofa, window, sunlight", NEG, 1, 1),
    ]
}

#[tokio::test]
async fn every_stage_on_hand_made_rows() {
    let out = run(&hand_made(), &CurateConfig::default(), 2).await;
    let reasons = reasons(&out);
    let expected: BTreeMap<String, String> = [
        ("empty", "empty_negative"),
        ("same", "negative_equals_prompt"),
        ("url", "url_or_garbage"),
        ("french", "not_english"),
        ("dup-a", "exact_duplicate"),
        ("dup-b", "exact_duplicate"),
        ("near-a", "near_duplicate"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(reasons, expected);
    assert_eq!(kept(&out), ["dup-c", "near-b", "ok", "other"]);

    let db = rows_of(&out.db);
    let by_item: HashMap<&str, &Row> = db.iter().map(|r| (r["item_id"].as_str(), r)).collect();
    assert_eq!(by_item["near-b"]["cluster_size"], "2");
    assert_eq!(by_item["ok"]["cluster_size"], "1");
    assert_eq!(
        by_item["dup-c"]["prompt_tags"],
        "[1girl, masterpiece, smile, solo]"
    );
    assert_eq!(
        by_item["dup-c"]["prompt_norm"],
        "smile, solo, 1girl, masterpiece <lora:x:0.5>"
    );
    let dup_id = canon::pair_key(
        &canon::tags("1girl, masterpiece, smile, solo"),
        &canon::tags(NEG),
    );
    assert_eq!(by_item["dup-c"]["id"], dup_id.to_string());
    // The exact duplicates name the row kept for them.
    let rejects = rows_of(&out.rejects);
    let dup_a = rejects.iter().find(|r| r["item_id"] == "dup-a").unwrap();
    assert_eq!(dup_a["kept_id"], dup_id.to_string());
    assert_eq!(dup_a["stage"], "exact_dedup");

    // Every input row is either kept or dropped with a reason, and the report agrees.
    let report = &out.report;
    let total = |stage: &str, metric: &str, key: &str| report.total(stage, metric, key).unwrap();
    assert_eq!(total("input", "rows", ""), 11.0);
    assert_eq!(total("filter", "rows_out", ""), 7.0);
    assert_eq!(total("exact_dedup", "rows_out", ""), 5.0);
    assert_eq!(total("near_dedup", "rows_out", ""), 4.0);
    assert_eq!(total("output", "rows", ""), 4.0);
    assert_eq!(total("filter", "dropped", "not_english"), 1.0);
    assert_eq!(total("near_dedup", "verified_pairs", ""), 1.0);
    let splits: f64 = ["train", "val", "test"]
        .iter()
        .filter_map(|s| report.total("split", "rows", s))
        .sum();
    assert_eq!(splits, 4.0);
}

#[tokio::test]
async fn keep_all_level_keeps_cluster_members_with_their_cluster() {
    let mut config = CurateConfig::default();
    config.dedup.level = DedupLevel::All;
    let out = run(&hand_made(), &config, 1).await;
    let db = rows_of(&out.db);
    let a = db.iter().find(|r| r["item_id"] == "near-a").unwrap();
    let b = db.iter().find(|r| r["item_id"] == "near-b").unwrap();
    assert_eq!(a["cluster_id"], b["cluster_id"]);
    assert_eq!(a["split"], b["split"]);
    assert_eq!(a["cluster_size"], "2");
    assert!(!reasons(&out).values().any(|r| r == "near_duplicate"));
}

#[tokio::test]
async fn nsfw_policy_flags_or_drops() {
    let rows = vec![row("n", "nude portrait, oil painting, museum", NEG, 1, 1)];
    let flagged = run(&rows, &CurateConfig::default(), 1).await;
    assert_eq!(rows_of(&flagged.db)[0]["flags"], "[nsfw]");
    let config = CurateConfig::from_toml("[filter.nsfw]\npolicy = \"drop\"\n").unwrap();
    let dropped = run(&rows, &config, 1).await;
    assert_eq!(reasons(&dropped)["n"], "nsfw");
}

#[tokio::test]
async fn same_rows_on_one_and_two_threads() {
    let rows: Vec<RawRow> = synthetic::generate(
        1500,
        Mix {
            exact: 0.3,
            near: 0.1,
        },
        3,
        11,
    )
    .into_iter()
    .map(|l| l.row)
    .collect();
    let config = CurateConfig::default();
    let one = run(&rows, &config, 1).await;
    let two = run(&rows, &config, 2).await;
    let again = run(&rows, &config, 2).await;
    assert!(!one.db.is_empty());
    assert_eq!(rows_of(&one.db), rows_of(&two.db));
    assert_eq!(rows_of(&one.rejects), rows_of(&two.rejects));
    assert_eq!(rows_of(&two.db), rows_of(&again.db));
    assert_eq!(one.report, two.report);
}

/// Pairs of rows predicted in one cluster vs pairs truly in one cluster.
fn pair_scores(clusters: &[(i64, usize)]) -> (usize, usize, usize) {
    let (mut predicted, mut truth, mut both) = (0, 0, 0);
    for i in 0..clusters.len() {
        for j in i + 1..clusters.len() {
            let p = clusters[i].0 == clusters[j].0;
            let t = clusters[i].1 == clusters[j].1;
            predicted += p as usize;
            truth += t as usize;
            both += (p && t) as usize;
        }
    }
    (predicted, truth, both)
}

#[tokio::test]
async fn near_duplicate_recall_and_precision_and_no_pair_across_splits() {
    // 4,000 rows: 2,000 base rows and 2,000 near duplicates of them (some bases get several, so
    // clusters of 2 to 6 rows), each at min(jp, jn) ≥ 0.8 with its base.
    let labelled = synthetic::generate(
        4000,
        Mix {
            exact: 0.0,
            near: 0.5,
        },
        2,
        2026,
    );
    let base_of: HashMap<String, usize> = labelled
        .iter()
        .map(|l| (l.row.item_id.clone(), l.base))
        .collect();
    let rows: Vec<RawRow> = labelled.iter().map(|l| l.row.clone()).collect();
    let mut config = CurateConfig::default();
    config.dedup.level = DedupLevel::All;
    let out = run(&rows, &config, 2).await;
    let db = rows_of(&out.db);
    // Two near duplicates of one base can coincide (both drop the same tag): those are exact
    // duplicates, rightly dropped. Nothing else may be.
    let dropped = reasons(&out);
    assert!(
        dropped.values().all(|r| r == "exact_duplicate"),
        "only exact duplicates may be dropped from the fixture: {dropped:?}"
    );
    assert_eq!(db.len() + dropped.len(), rows.len());
    let clusters: Vec<(i64, usize)> = db
        .iter()
        .map(|r| (r["cluster_id"].parse().unwrap(), base_of[&r["item_id"]]))
        .collect();
    let (predicted, truth, both) = pair_scores(&clusters);
    let recall = both as f64 / truth as f64;
    let precision = both as f64 / predicted as f64;
    println!(
        "near-duplicate clusters on {} rows: {truth} true pairs, {predicted} predicted, \
         recall {recall:.4}, precision {precision:.4}",
        rows.len()
    );
    assert!(
        truth >= 2000,
        "the fixture must hold at least 2,000 labelled pairs, has {truth}"
    );
    assert!(recall >= 0.95, "recall {recall}");
    assert!(precision >= 0.98, "precision {precision}");

    // Brute force over all pairs: no two rows in different splits are near duplicates.
    let tags: Vec<(Vec<String>, Vec<String>, &str)> = db
        .iter()
        .map(|r| {
            (
                canon::tags(&r["prompt_norm"]),
                canon::tags(&r["negative_norm"]),
                r["split"].as_str(),
            )
        })
        .collect();
    for i in 0..tags.len() {
        for j in i + 1..tags.len() {
            if tags[i].2 != tags[j].2 {
                let sim = canon::pair_similarity(&tags[i].0, &tags[i].1, &tags[j].0, &tags[j].1);
                assert!(
                    sim < config.dedup.threshold,
                    "{} and {} are near duplicates ({sim}) in {} and {}",
                    db[i]["item_id"],
                    db[j]["item_id"],
                    tags[i].2,
                    tags[j].2
                );
            }
        }
    }
}

#[tokio::test]
async fn missing_input_columns_are_named() {
    let batch = raw_batch(&hand_made());
    let narrow = batch.project(&[0, 1, 3]).unwrap();
    let err = curate_batches(
        vec![narrow.clone()],
        narrow.schema(),
        &CurateConfig::default(),
        1,
    )
    .await
    .expect_err("a table without negative_prompt cannot be curated");
    let msg = err.to_string();
    assert!(
        msg.contains("negative_prompt") && msg.contains("likes"),
        "{msg}"
    );
}

#[tokio::test]
async fn ids_are_unique_and_sorted() {
    let rows: Vec<RawRow> = synthetic::generate(
        800,
        Mix {
            exact: 0.3,
            near: 0.1,
        },
        2,
        3,
    )
    .into_iter()
    .map(|l| l.row)
    .collect();
    let out = run(&rows, &CurateConfig::default(), 2).await;
    let ids: Vec<i64> = out
        .db
        .iter()
        .flat_map(|b| {
            b.column_by_name("id")
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
}
