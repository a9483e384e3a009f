//! Canonical tags and the near-duplicate rule checked against every vector in
//! `shared/testdata/dedup/` (see its README for the rules).

use std::path::PathBuf;

use negopt_etl::canon;
use serde_json::Value;

/// Where the shared test vectors live: `$NEGOPT_TESTDATA`, else `shared/testdata` beside the repo.
fn dedup_vectors(file: &str) -> Vec<Value> {
    let dir = std::env::var_os("NEGOPT_TESTDATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"),
        PathBuf::from,
    );
    let path = dir.join("dedup").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("test vectors {} unreadable: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("a JSON array of strings")
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

#[test]
fn canon_cases_give_their_tags() {
    let cases = dedup_vectors("canon_cases.jsonl");
    assert!(
        cases.len() >= 25,
        "expected the 25 shared cases, found {}",
        cases.len()
    );
    for case in cases {
        let text = case["text"].as_str().expect("text");
        assert_eq!(
            canon::tags(text),
            strings(&case["tags"]),
            "tags of {text:?}"
        );
    }
}

#[test]
fn canon_pairs_give_their_similarities() {
    let pairs = dedup_vectors("canon_pairs.jsonl");
    assert!(
        pairs.len() >= 7,
        "expected the 7 shared pairs, found {}",
        pairs.len()
    );
    for pair in pairs {
        let field = |row: &str, f: &str| canon::tags(pair[row][f].as_str().expect("text field"));
        let (pa, na) = (field("a", "prompt"), field("a", "negative_prompt"));
        let (pb, nb) = (field("b", "prompt"), field("b", "negative_prompt"));
        let jp = canon::jaccard(&pa, &pb);
        let jn = canon::jaccard(&na, &nb);
        let sim = canon::pair_similarity(&pa, &na, &pb, &nb);
        let prefixed = |p: &[String], n: &[String]| -> Vec<String> {
            p.iter()
                .map(|t| format!("p:{t}"))
                .chain(n.iter().map(|t| format!("n:{t}")))
                .collect()
        };
        let j_union = canon::jaccard(&prefixed(&pa, &na), &prefixed(&pb, &nb));
        let close = |got: f64, key: &str| {
            let want = pair[key].as_f64().expect("number");
            assert!(
                (got - want).abs() < 1e-6,
                "{key}: got {got}, want {want} for {pair}"
            );
        };
        close(jp, "jp");
        close(jn, "jn");
        close(sim, "sim");
        close(j_union, "j_union");
        let near = pair["near_duplicate"].as_bool().expect("bool");
        assert_eq!(sim >= 0.8, near, "near_duplicate for {pair}");
    }
}
