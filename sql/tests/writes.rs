//! The read-only gate, and `--write` turning CREATE TABLE AS / INSERT INTO into catalog commits.

use crate::support::Fixture;

#[test]
fn read_only_refuses_every_change() {
    let fixture = Fixture::new();
    for (statement, message) in [
        (
            "CREATE TABLE copy AS SELECT * FROM pairs",
            "sql: CREATE TABLE copy is refused: this shell is read-only\nhelp: start the shell with --write to commit it as a new catalog version\n",
        ),
        (
            "INSERT INTO notes VALUES ('x')",
            "sql: INSERT INTO notes is refused: this shell is read-only\nhelp: start the shell with --write to commit it as a new catalog version\n",
        ),
    ] {
        let run = fixture.run(&["-c", statement], "");
        assert_eq!(
            (run.code, run.stderr.as_str()),
            (Some(1), message),
            "{statement}"
        );
    }
    for (statement, needle) in [
        (
            "DELETE FROM pairs WHERE id = 1",
            "is not supported: catalog tables only grow by commits",
        ),
        (
            "UPDATE pairs SET model = 'x'",
            "is not supported: catalog tables only grow by commits",
        ),
        (
            "DROP TABLE pairs",
            "DROP TABLE pairs is not supported: the catalog keeps every version",
        ),
        (
            "COPY pairs TO '/tmp/negopt-sql-copy.csv'",
            "the shell does not write files with COPY; use --output FILE",
        ),
    ] {
        let run = fixture.run(&["--write", "-c", statement], "");
        assert_eq!(run.code, Some(1), "{statement}");
        assert!(run.stderr.contains(needle), "{statement}: {}", run.stderr);
    }
    // Nothing changed.
    let run = fixture.run(
        &[
            "--format",
            "csv",
            "-c",
            "SELECT count(*) AS n FROM pairs; SELECT count(*) AS n FROM notes",
        ],
        "",
    );
    assert_eq!(run.stdout, "n\n3\nn\n1\n");
    assert!(!fixture.path().join("copy").exists());
}

#[test]
fn session_views_are_allowed_read_only() {
    let fixture = Fixture::new();
    let run = fixture.run(
        &["--format", "csv"],
        "CREATE VIEW v AS SELECT id FROM pairs WHERE id > 1;\nSELECT count(*) AS n FROM v;\n",
    );
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), "n\n2\n"),
        "{run:?}"
    );
}

#[test]
fn write_mode_commits_create_table_as_and_insert_with_lineage() {
    let fixture = Fixture::new();
    let script = "CREATE TABLE short_negatives AS SELECT id, negative_prompt FROM pairs WHERE length(negative_prompt) < 21;\n\
                  INSERT INTO short_negatives VALUES (10, 'text'), (11, NULL);\n\
                  INSERT INTO short_negatives SELECT id + 100, negative_prompt FROM table_at('pairs', 1) WHERE id = 1;\n\
                  SELECT id, negative_prompt FROM short_negatives ORDER BY id;\n";
    let run = fixture.run(&["--write", "--format", "csv"], script);
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""), "{run:?}");
    assert_eq!(
        run.stdout,
        "committed 3 rows to short_negatives as version 1\n\
         committed 2 rows to short_negatives as version 2\n\
         committed 1 row to short_negatives as version 3\n\
         id,negative_prompt\n1,\"lowres, (blurry:1.2)\"\n2,\"EasyNegative, lowres\"\n3,\n10,text\n11,\n101,\"lowres, (blurry:1.2)\"\n"
    );
    // The commits are catalog versions with the statement and what it read.
    let history = crate::support::block_on(fixture.catalog().history("short_negatives")).unwrap();
    let commits: Vec<_> = history.iter().map(|r| r.commit.clone().unwrap()).collect();
    assert_eq!(commits[0].operation, "create");
    assert_eq!(commits[1].operation, "sql");
    assert_eq!(
        commits[1].params["statement"],
        "CREATE TABLE short_negatives AS SELECT id, negative_prompt FROM pairs WHERE length(negative_prompt) < 21"
    );
    assert_eq!(
        commits[1].inputs,
        vec![negopt_catalog::Input {
            table: "pairs".into(),
            version: 2
        }]
    );
    assert_eq!(commits[2].inputs, vec![]);
    // `table_at` names the version it read.
    assert_eq!(
        commits[3].inputs,
        vec![negopt_catalog::Input {
            table: "pairs".into(),
            version: 1
        }]
    );
    // A second CREATE of the same table fails; IF NOT EXISTS is a no-op.
    let run = fixture.run(
        &[
            "--write",
            "-c",
            "CREATE TABLE short_negatives AS SELECT 1 AS id",
        ],
        "",
    );
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr
            .contains("table \"short_negatives\" already exists"),
        "{}",
        run.stderr
    );
    let run = fixture.run(
        &[
            "--write",
            "-c",
            "CREATE TABLE IF NOT EXISTS short_negatives AS SELECT 1 AS id",
        ],
        "",
    );
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), ""), "{run:?}");
}
