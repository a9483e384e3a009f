//! Test fixtures: a small pairs schema, deterministic batches, and row extraction for comparisons.

use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use negopt_catalog::Catalog;

/// `(id, prompt, likes)`, with `likes` nullable.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("prompt", DataType::Utf8, false),
        Field::new("likes", DataType::Int64, true),
    ]))
}

/// Rows `start..start+n`: prompt `p{id}`, likes `id % 7` (null when `id % 5 == 0`).
pub fn batch(start: i64, n: i64) -> RecordBatch {
    let ids: Vec<i64> = (start..start + n).collect();
    let prompts: Vec<String> = ids.iter().map(|i| format!("p{i}")).collect();
    let likes: Vec<Option<i64>> = ids.iter().map(|i| (i % 5 != 0).then_some(i % 7)).collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(prompts)),
            Arc::new(Int64Array::from(likes)),
        ],
    )
    .unwrap()
}

/// The rows of `batches` as sorted `(id, prompt, likes)` tuples, whatever string layout they use.
pub fn rows(batches: &[RecordBatch]) -> Vec<(i64, String, Option<i64>)> {
    let mut out = Vec::new();
    for b in batches {
        let ids = b.column_by_name("id").unwrap().as_primitive::<Int64Type>();
        let prompts = cast(b.column_by_name("prompt").unwrap(), &DataType::Utf8).unwrap();
        let prompts = prompts.as_string::<i32>();
        let likes = b
            .column_by_name("likes")
            .unwrap()
            .as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            let like = (!likes.is_null(r)).then(|| likes.value(r));
            out.push((ids.value(r), prompts.value(r).to_string(), like));
        }
    }
    out.sort();
    out
}

/// Expected rows of `batch(start, n)`.
pub fn expected(ranges: &[(i64, i64)]) -> Vec<(i64, String, Option<i64>)> {
    let batches: Vec<RecordBatch> = ranges.iter().map(|&(s, n)| batch(s, n)).collect();
    rows(&batches)
}

/// A fresh catalog in a temporary directory (kept alive by the returned guard).
pub fn catalog() -> (tempfile::TempDir, Catalog) {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open_or_create(dir.path().join("npdb")).unwrap();
    (dir, catalog)
}
