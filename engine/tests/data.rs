//! Data streaming: a catalog split arrives as narrow Arrow batches of that split only, one
//! file's batches at a time; the examples built from it do not depend on the order batches
//! arrive in; bad rows are skipped; bad tables are clear errors; the epoch order is a
//! deterministic permutation.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use negopt_catalog::{Catalog, Commit};
use negopt_engine::data::{
    Batcher, CatalogSource, MemorySource, PairSource, Split, TEXT_COLUMNS, block_on, examples,
    read_pairs,
};
use negopt_engine::tokenizer::Tokenizer;

/// Rows `first..first + n` of a wide table: `id`, `prompt`, `negative_prompt` (null every 7th
/// row), `url`, `split` (8 train : 1 val : 1 test).
fn rows(first: usize, n: usize) -> RecordBatch {
    let ids: Vec<usize> = (first..first + n).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("prompt", DataType::Utf8, false),
        Field::new("negative_prompt", DataType::Utf8, true),
        Field::new("url", DataType::Utf8, false),
        Field::new("split", DataType::Utf8, false),
    ]));
    let split = |i: usize| match i % 10 {
        8 => "val",
        9 => "test",
        _ => "train",
    };
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(ids.iter().map(|&i| i as i64))),
            Arc::new(StringArray::from_iter_values(
                ids.iter().map(|i| format!("prompt {i} with a cat")),
            )),
            Arc::new(StringArray::from_iter(ids.iter().map(|&i| {
                (i % 7 != 3).then(|| format!("blurry, lowres {}", i % 5))
            }))),
            Arc::new(StringArray::from_iter_values(
                ids.iter().map(|i| format!("https://example.invalid/{i}")),
            )),
            Arc::new(StringArray::from_iter_values(ids.iter().map(|&i| split(i)))),
        ],
    )
    .unwrap()
}

/// A catalog whose table `negative_prompts_db` holds `files` appends of 200 rows each.
fn catalog(dir: &std::path::Path, files: usize) -> Catalog {
    let catalog = Catalog::open_or_create(dir).unwrap();
    block_on(catalog.create_table("negative_prompts_db", rows(0, 1).schema()))
        .unwrap()
        .unwrap();
    for f in 0..files {
        block_on(catalog.append(
            "negative_prompts_db",
            vec![rows(f * 200, 200)],
            Commit::new("fixture"),
        ))
        .unwrap()
        .unwrap();
    }
    catalog
}

/// The expected (prompt, negative) multiset of `split` among rows `0..n`.
fn expected(n: usize, split: Split) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    let batch = rows(0, n);
    let (p, neg, s) = (
        batch.column(1).as_string::<i32>(),
        batch.column(2).as_string::<i32>(),
        batch.column(4).as_string::<i32>(),
    );
    for i in 0..n {
        if s.value(i) == split.as_str() && !neg.is_null(i) {
            *m.entry((p.value(i).to_string(), neg.value(i).to_string()))
                .or_default() += 1;
        }
    }
    m
}

/// A tokenizer trained on the fixture's texts.
fn tokenizer() -> Tokenizer {
    let texts = (0..600).flat_map(|i| {
        [
            format!("prompt {i} with a cat"),
            format!("blurry, lowres {}", i % 5),
        ]
    });
    Tokenizer::train(texts, 80).unwrap()
}

#[test]
fn catalog_split_streams_narrow_batches_of_that_split_only() {
    let dir = tempfile::tempdir().unwrap();
    let source = CatalogSource::open(catalog(dir.path(), 3), "negative_prompts_db", None).unwrap();
    assert_eq!(source.version(), 3);
    let mut batches = 0;
    let mut seen = BTreeMap::new();
    for batch in source.stream_split(Split::Val).unwrap() {
        let batch = batch.unwrap();
        batches += 1;
        // Only the two text columns travel: no id, url or split.
        let names: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, TEXT_COLUMNS);
        let cast = |i: usize| arrow::compute::cast(batch.column(i), &DataType::Utf8).unwrap();
        let (p, n) = (cast(0), cast(1));
        let (p, n) = (p.as_string::<i32>(), n.as_string::<i32>());
        for i in 0..batch.num_rows() {
            if !n.is_null(i) {
                *seen
                    .entry((p.value(i).to_string(), n.value(i).to_string()))
                    .or_insert(0usize) += 1;
            }
        }
    }
    assert!(batches >= 3, "one file, at least one batch: {batches}");
    assert_eq!(seen, expected(600, Split::Val));
    // The pairs reader drops the null negatives and keeps the rest.
    let pairs = read_pairs(&source, Split::Val).unwrap();
    assert_eq!(
        pairs.len(),
        expected(600, Split::Val).values().sum::<usize>()
    );

    // A consumer that stops after one batch does not wait for the rest of the scan.
    let mut stream = source.stream_split(Split::Train).unwrap();
    assert!(stream.next().unwrap().unwrap().num_rows() > 0);
    drop(stream);
}

#[test]
fn examples_do_not_depend_on_batch_order() {
    let dir = tempfile::tempdir().unwrap();
    let source = CatalogSource::open(catalog(dir.path(), 3), "negative_prompts_db", None).unwrap();
    let tok = tokenizer();
    let from_catalog = examples(&source, Split::Train, &tok, 16, 16).unwrap();
    let parts = vec![rows(0, 200), rows(200, 200), rows(400, 200)];
    let in_order = examples(&MemorySource(parts.clone()), Split::Train, &tok, 16, 16).unwrap();
    let reversed: Vec<RecordBatch> = parts.into_iter().rev().collect();
    let reversed = examples(&MemorySource(reversed), Split::Train, &tok, 16, 16).unwrap();
    assert_eq!(
        from_catalog.len(),
        expected(600, Split::Train).values().sum::<usize>()
    );
    assert_eq!(from_catalog, in_order);
    assert_eq!(from_catalog, reversed);
    // Truncation keeps `</s>` last.
    assert!(
        from_catalog
            .iter()
            .all(|e| e.src.len() <= 16 && e.src.last() == Some(&tok.eos_id))
    );
}

#[test]
fn a_table_without_the_columns_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open_or_create(dir.path()).unwrap();
    let narrow = rows(0, 20).project(&[0, 1, 2]).unwrap(); // no `split`
    block_on(catalog.create_table("pairs", narrow.schema()))
        .unwrap()
        .unwrap();
    block_on(catalog.append("pairs", vec![narrow], Commit::new("fixture")))
        .unwrap()
        .unwrap();
    let source = CatalogSource::open(catalog, "pairs", None).unwrap();
    let err = read_pairs(&source, Split::Train).unwrap_err().to_string();
    assert!(
        err.starts_with("pairs v1: cannot select prompt, negative_prompt where split = 'train'"),
        "{err}"
    );
    assert!(err.contains("help:"), "{err}");
}

#[test]
fn epoch_order_is_a_deterministic_permutation_of_length_sorted_batches() {
    let ex = examples(
        &MemorySource(vec![rows(0, 600)]),
        Split::Train,
        &tokenizer(),
        64,
        64,
    )
    .unwrap();
    let n = ex.len();
    let b = Batcher::new(ex, 4, 9, 0, 0);
    let (e0, e0_again, e1) = (b.epoch_order(0), b.epoch_order(0), b.epoch_order(1));
    assert_eq!(e0, e0_again, "same seed and epoch, same order");
    assert_ne!(e0, e1, "each epoch reshuffles");
    for order in [&e0, &e1] {
        let mut all: Vec<usize> = order.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..n).collect::<Vec<_>>(),
            "every example once per epoch"
        );
        for batch in order.iter() {
            assert!(!batch.is_empty() && batch.len() <= 4);
            // A batch is a run of a length-sorted bucket.
            let lens: Vec<_> = batch
                .iter()
                .map(|&i| (b.example(i).src.len(), b.example(i).tgt.len()))
                .collect();
            assert!(lens.is_sorted(), "{lens:?}");
        }
    }
    let batch = b.batch(&e0[0]);
    let longest = e0[0].iter().map(|&i| b.example(i).src.len()).max().unwrap();
    assert_eq!((batch.b, batch.s), (e0[0].len(), longest));
    assert_eq!(batch.input_ids.len(), batch.b * batch.s);
}
