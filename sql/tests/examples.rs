//! The README's example queries (`negopt_sql::examples`) over a six-row `negative_prompts_db`
//! whose answers are worked out by hand.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use negopt_catalog::Commit;
use negopt_sql::examples::EXAMPLES;

use crate::support::{Fixture, block_on};

/// id, negative_prompt, model, sampler, source, cluster_id, cluster_size.
type Row = (
    i64,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    i64,
    i64,
);

fn add_negative_prompts_db(fixture: &Fixture) {
    let text = |name| Field::new(name, DataType::Utf8, true);
    let int = |name| Field::new(name, DataType::Int64, true);
    let schema = Arc::new(Schema::new(vec![
        int("id"),
        text("negative_prompt"),
        text("model"),
        text("sampler"),
        text("source"),
        int("cluster_id"),
        int("cluster_size"),
    ]));
    let rows: [Row; 6] = [
        (1, "lowres, blurry", "m1", "Euler", "civitai", 1, 2),
        (2, "lowres", "m1", "Euler", "civitai", 1, 2),
        (3, "(blurry:1.2), text", "m2", "DDIM", "playground", 3, 1),
        (
            4,
            "lowres, text, watermark",
            "m1",
            "DDIM",
            "playground",
            4,
            3,
        ),
        (5, "", "m2", "DDIM", "a1111_png", 5, 1),
        (6, "Lowres", "m1", "Euler", "civitai", 6, 1),
    ];
    let ints = |f: fn(&Row) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(rows.iter().map(f)))
    };
    let texts = |f: fn(&Row) -> &'static str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            ints(|r| r.0),
            texts(|r| r.1),
            texts(|r| r.2),
            texts(|r| r.3),
            texts(|r| r.4),
            ints(|r| r.5),
            ints(|r| r.6),
        ],
    )
    .unwrap();
    let catalog = fixture.catalog();
    block_on(async {
        catalog
            .create_table("negative_prompts_db", schema)
            .await
            .unwrap();
        catalog
            .append("negative_prompts_db", vec![batch], Commit::new("test"))
            .await
            .unwrap();
    });
}

#[test]
fn readme_examples_give_the_hand_worked_answers() {
    let fixture = Fixture::new();
    add_negative_prompts_db(&fixture);
    let expected = [
        "tag,pairs\nlowres,4\nblurry,2\ntext,2\nwatermark,1\n",
        "model,sampler,pairs,avg_tokens,avg_chars\nm1,Euler,3,1.3,8.7\nm2,DDIM,2,2.0,9.0\nm1,DDIM,1,3.0,23.0\n",
        "source,pairs,percent\ncivitai,3,50.0\nplayground,2,33.33\na1111_png,1,16.67\n",
        "cluster_size,clusters,raw_pairs\n1,3,3\n2,1,2\n3,1,3\n",
    ];
    for (example, expected) in EXAMPLES.iter().zip(expected) {
        let run = fixture.run(&["--format", "csv", "-c", example.sql], "");
        assert_eq!(
            (run.code, run.stderr.as_str()),
            (Some(0), ""),
            "{}",
            example.name
        );
        assert_eq!(run.stdout, expected, "{}", example.name);
    }
}
