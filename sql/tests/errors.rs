//! Errors: syntax errors with their position, unknown tables naming the existing ones, damaged
//! tables, a missing catalog; and the exit codes (1 a statement failed, 2 the shell could not start).

use crate::support::{Fixture, run_sql};

#[test]
fn syntax_error_shows_message_and_position_and_exits_1() {
    let fixture = Fixture::new();
    let run = fixture.run(&["-c", "SELECT id FROM pairs WHERE"], "");
    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.stderr,
        "sql: syntax error at line 1, column 27: Expected: an expression, found: EOF\n\
         1 | SELECT id FROM pairs WHERE\n  |                           ^\n"
    );
    // In a script, the location counts script lines and the script stops there.
    let run = fixture.run(
        &["--format", "csv"],
        "SELECT 1 AS a;\nSELECT\n  id,\n  1 +* 2 FROM pairs;\nSELECT 2 AS b;\n",
    );
    assert_eq!(run.code, Some(1));
    assert_eq!(run.stdout, "a\n1\n");
    assert_eq!(
        run.stderr,
        "sql: stdin:4: syntax error at line 3, column 6: Expected: an expression, found: *\n\
         3 |   1 +* 2 FROM pairs\n  |      ^\n"
    );
}

#[test]
fn unknown_table_lists_the_existing_ones() {
    let fixture = Fixture::new();
    let run = fixture.run(&["-c", "SELECT * FROM\n  pair"], "");
    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.stderr,
        "sql: unknown table \"pair\"; tables in this catalog: notes, pairs\n2 |   pair\n  |   ^\n"
    );
}

#[test]
fn damaged_table_fails_clearly_and_the_rest_still_works() {
    let fixture = Fixture::new();
    fixture.damage("notes");
    let run = fixture.run(&["--quiet", "-c", "SELECT * FROM notes"], "");
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr
            .starts_with("sql: table \"notes\" is damaged and cannot be read: "),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("_delta_log"), "{}", run.stderr);
    let run = fixture.run(
        &["--format", "csv", "-c", "SELECT count(*) AS n FROM pairs"],
        "",
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout, "n\n3\n");
    assert!(
        run.stderr
            .starts_with("sql: warning: table \"notes\" is damaged and not registered"),
        "{}",
        run.stderr
    );
    let run = fixture.run(&["-q", "--format", "csv"], "\\d\n");
    assert!(
        run.stdout
            .starts_with("table,version,rows,note\nnotes,,,damaged: Kernel error: Json error: "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.ends_with("pairs,2,3,\n"), "{}", run.stdout);
}

#[test]
fn missing_catalog_exits_2_with_help() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_sql(&dir.path().join("nowhere"), &["-c", "SELECT 1"], "");
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.starts_with("sql: "), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("is not a negopt catalog: the directory does not exist"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr
            .lines()
            .filter(|l| l.starts_with("sql: "))
            .count(),
        1,
        "printed once"
    );
}
