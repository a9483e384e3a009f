//! Every catalog error is produced, and its message names the input and the problem.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use negopt_catalog::{At, Catalog, CatalogError, Commit};

use crate::common::{batch, catalog, schema};

#[tokio::test]
async fn unknown_table_names_the_existing_ones() {
    let (_dir, cat) = catalog();
    cat.create_table("raw_pairs", schema()).await.unwrap();
    cat.create_table("raw_pages", schema()).await.unwrap();
    let err = cat
        .read("negative_prompts_db", At::Latest)
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::UnknownTable { .. }));
    assert_eq!(
        err.to_string(),
        "unknown table \"negative_prompts_db\"; tables in this catalog: raw_pages, raw_pairs"
    );
}

#[tokio::test]
async fn unknown_version_gives_the_range() {
    let (_dir, cat) = catalog();
    cat.create_table("pairs", schema()).await.unwrap();
    cat.append("pairs", vec![batch(0, 1)], Commit::new("t"))
        .await
        .unwrap();
    let err = cat.read("pairs", At::Version(7)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "table \"pairs\" has no version 7; its versions are 0..=1"
    );
}

#[tokio::test]
async fn schema_mismatch_is_refused_and_described() {
    let (_dir, cat) = catalog();
    cat.create_table("pairs", schema()).await.unwrap();
    let wrong = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("prompt", DataType::Int64, false),
        Field::new("likes", DataType::Int64, true),
    ]));
    let batch = arrow::array::RecordBatch::try_new(
        wrong,
        vec![
            Arc::new(arrow::array::Int64Array::from(vec![1])),
            Arc::new(arrow::array::Int64Array::from(vec![2])),
            Arc::new(arrow::array::Int64Array::from(vec![3])),
        ],
    )
    .unwrap();
    let err = cat
        .append("pairs", vec![batch], Commit::new("t"))
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::SchemaMismatch { .. }));
    let msg = err.to_string();
    assert!(msg.starts_with("schema of the batches does not match table \"pairs\": column \"prompt\" has type long but the table has string"), "{msg}");
    let missing = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let batch = arrow::array::RecordBatch::try_new(
        missing,
        vec![Arc::new(arrow::array::Int64Array::from(vec![1]))],
    )
    .unwrap();
    let err = cat
        .overwrite("pairs", vec![batch], Commit::new("t"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("column \"prompt\" is missing"),
        "{err}"
    );
    // Nothing was committed by the refused writes.
    assert_eq!(cat.latest_version("pairs").await.unwrap(), 0);
}

#[tokio::test]
async fn damaged_log_file_is_reported() {
    let (_dir, cat) = catalog();
    cat.create_table("pairs", schema()).await.unwrap();
    cat.append("pairs", vec![batch(0, 3)], Commit::new("t"))
        .await
        .unwrap();
    let log = cat
        .root()
        .join("pairs/_delta_log/00000000000000000001.json");
    std::fs::write(&log, "{ this is not json").unwrap();
    let err = cat.read("pairs", At::Latest).await.unwrap_err();
    assert!(matches!(err, CatalogError::DamagedLog { .. }), "{err}");
    assert!(
        err.to_string().starts_with("table \"pairs\" is damaged"),
        "{err}"
    );
    let err = cat.history("pairs").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("00000000000000000001.json: invalid JSON"),
        "{err}"
    );
}

#[tokio::test]
async fn missing_log_file_is_reported() {
    let (_dir, cat) = catalog();
    cat.create_table("pairs", schema()).await.unwrap();
    cat.append("pairs", vec![batch(0, 3)], Commit::new("t"))
        .await
        .unwrap();
    cat.append("pairs", vec![batch(3, 3)], Commit::new("t"))
        .await
        .unwrap();
    std::fs::remove_file(
        cat.root()
            .join("pairs/_delta_log/00000000000000000001.json"),
    )
    .unwrap();
    let err = cat.read("pairs", At::Latest).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("commit file 00000000000000000001.json is missing (versions 0 and 2 exist)"),
        "{err}"
    );
    std::fs::remove_file(
        cat.root()
            .join("pairs/_delta_log/00000000000000000000.json"),
    )
    .unwrap();
    let err = cat.latest_version("pairs").await.unwrap_err();
    assert!(
        err.to_string().contains(
            "commit file 00000000000000000001.json is missing (the log starts at version 2"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_directory_that_is_not_a_catalog_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = Catalog::open(dir.path().join("nope")).unwrap_err();
    assert!(
        err.to_string()
            .contains("is not a negopt catalog: the directory does not exist"),
        "{err}"
    );
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let err = Catalog::open(&file).unwrap_err();
    assert!(
        err.to_string()
            .contains("is not a negopt catalog: it is not a directory"),
        "{err}"
    );
    let busy = dir.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("precious.txt"), "keep me").unwrap();
    let err = Catalog::open(&busy).unwrap_err();
    assert!(
        err.to_string()
            .contains("it has no _negopt_catalog.json marker file"),
        "{err}"
    );
    let err = Catalog::open_or_create(&busy).unwrap_err();
    assert!(
        err.to_string()
            .contains("the directory is not empty and has no _negopt_catalog.json marker"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(busy.join("precious.txt")).unwrap(),
        "keep me"
    );
    std::fs::write(busy.join("_negopt_catalog.json"), "garbage").unwrap();
    let err = Catalog::open(&busy).unwrap_err();
    assert!(err.to_string().contains("marker is damaged"), "{err}");
}

#[tokio::test]
async fn names_and_duplicates_are_checked() {
    let (_dir, cat) = catalog();
    let err = cat.create_table("Bad-Name", schema()).await.unwrap_err();
    assert!(matches!(err, CatalogError::InvalidName { .. }), "{err}");
    cat.create_table("pairs", schema()).await.unwrap();
    let err = cat.create_table("pairs", schema()).await.unwrap_err();
    assert_eq!(err.to_string(), "table \"pairs\" already exists");
    cat.ensure_table("pairs", schema()).await.unwrap();
    let other = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let err = cat.ensure_table("pairs", other).await.unwrap_err();
    assert!(matches!(err, CatalogError::SchemaMismatch { .. }), "{err}");
}
