//! Registration into DataFusion: plain names are the latest version, `table_at` reads any version.

use datafusion::prelude::SessionContext;
use negopt_catalog::Commit;

use crate::common::{batch, catalog, schema};

async fn scalar(ctx: &SessionContext, sql: &str) -> i64 {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let col = batches[0].column(0);
    arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(col).value(0)
}

#[tokio::test]
async fn plain_names_and_table_at() {
    let (_dir, cat) = catalog();
    cat.create_table("pairs", schema()).await.unwrap();
    cat.append("pairs", vec![batch(0, 10)], Commit::new("t"))
        .await
        .unwrap();
    cat.append("pairs", vec![batch(10, 5)], Commit::new("t"))
        .await
        .unwrap();
    let ctx = SessionContext::new();
    cat.register_all(&ctx).await.unwrap();

    assert_eq!(scalar(&ctx, "SELECT count(*) FROM pairs").await, 15);
    assert_eq!(
        scalar(&ctx, "SELECT count(*) FROM table_at('pairs', 1)").await,
        10
    );
    assert_eq!(
        scalar(&ctx, "SELECT count(*) FROM table_at('pairs', 0)").await,
        0
    );
    assert_eq!(
        scalar(
            &ctx,
            "SELECT sum(id) FROM table_at('pairs', 2) WHERE likes IS NULL"
        )
        .await,
        5 + 10 // ids 0, 5 and 10 have null likes; 0 adds nothing
    );
    let now = chrono::Utc::now().to_rfc3339();
    assert_eq!(
        scalar(
            &ctx,
            &format!("SELECT count(*) FROM table_at('pairs', '{now}')")
        )
        .await,
        15
    );

    let err = ctx
        .sql("SELECT * FROM table_at('pairs', 9)")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("table \"pairs\" has no version 9; its versions are 0..=2"),
        "{err}"
    );
    let err = ctx
        .sql("SELECT * FROM table_at('nope', 1)")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown table \"nope\"; tables in this catalog: pairs"),
        "{err}"
    );
    let err = ctx
        .sql("SELECT * FROM table_at('pairs', 'yesterday')")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("is not an RFC 3339 timestamp"),
        "{err}"
    );
}

#[tokio::test]
async fn a_damaged_table_is_reported_and_the_rest_stay_queryable() {
    let (_dir, cat) = catalog();
    for name in ["good", "bad"] {
        cat.create_table(name, schema()).await.unwrap();
        cat.append(name, vec![batch(0, 4)], Commit::new("t"))
            .await
            .unwrap();
    }
    std::fs::write(
        cat.root().join("bad/_delta_log/00000000000000000001.json"),
        "{ this is not json",
    )
    .unwrap();
    let ctx = SessionContext::new();
    let registered = cat.register_all(&ctx).await.unwrap();
    assert_eq!(registered.tables, [("good".to_string(), 1)].into());
    assert_eq!(
        registered.damaged.keys().collect::<Vec<_>>(),
        vec!["bad"],
        "{registered:?}"
    );
    assert_eq!(scalar(&ctx, "SELECT count(*) FROM good").await, 4);
    assert_eq!(
        scalar(&ctx, "SELECT count(*) FROM table_at('good', 0)").await,
        0
    );
    let err = ctx
        .sql("SELECT * FROM table_at('bad', 0)")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("table \"bad\" is damaged"),
        "{err}"
    );
}
