//! The domain functions through the binary, over literals (with NULL and empty text) and over a
//! catalog table.

use crate::support::Fixture;

#[test]
fn text_functions_with_null_and_empty_inputs() {
    let fixture = Fixture::new();
    let query = "SELECT tags(t) AS tags, strip_weights(t) AS stripped, token_count(t) AS tokens, \
                 jaccard(t, 'lowres, blurry') AS j \
                 FROM (VALUES (1, '(Blurry:1.3), lowres, <lora:x:1>'), (2, ''), (3, NULL)) AS v(i, t) ORDER BY i";
    let run = fixture.run(&["--format", "csv", "-c", query], "");
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""), "{run:?}");
    assert_eq!(
        run.stdout,
        "tags,stripped,tokens,j\n\"[blurry, lowres]\",\"Blurry, lowres\",7,1.0\n[],,0,0.0\n,,,\n"
    );
}

#[test]
fn a1111_parse_returns_a_struct_with_a_params_map() {
    let fixture = Fixture::new();
    let query = "SELECT a1111_parse(t) AS p FROM (VALUES \
                 (1, 'a fox' || chr(10) || 'Steps: 20, Sampler: Euler a, CFG scale: 7.5'), \
                 (2, ''), (3, NULL)) AS v(i, t) ORDER BY i";
    let run = fixture.run(&["--format", "ndjson", "-c", query], "");
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""), "{run:?}");
    assert_eq!(
        run.stdout,
        "{\"p\":{\"prompt\":\"a fox\",\"negative_prompt\":\"\",\"params\":{\"Steps\":\"20\",\"Sampler\":\"Euler a\",\"CFG scale\":\"7.5\"}}}\n\
         {\"p\":{\"prompt\":\"\",\"negative_prompt\":\"\",\"params\":{}}}\n\
         {\"p\":null}\n"
    );
    let run = fixture.run(
        &["--format", "csv", "-c", "SELECT a1111_parse('x' || chr(10) || 'Steps: 9, Seed: 3, Size: 512x768')['params']['Size'] AS size"],
        "",
    );
    assert_eq!(run.stdout, "size\n512x768\n");
}

#[test]
fn functions_over_a_catalog_table() {
    let fixture = Fixture::new();
    let query = "SELECT id, tags(negative_prompt) AS tags, jaccard(tags(negative_prompt), 'lowres') AS j \
                 FROM pairs ORDER BY id";
    let run = fixture.run(&["--format", "csv", "-c", query], "");
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""), "{run:?}");
    assert_eq!(
        run.stdout,
        "id,tags,j\n1,\"[blurry, lowres]\",0.5\n2,\"[easynegative, lowres]\",0.5\n3,[],0.0\n"
    );
}
