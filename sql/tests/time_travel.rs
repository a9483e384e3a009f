//! Older versions through `table_at('name', version | 'timestamp')`.

use negopt_catalog::At;

use crate::support::{Fixture, block_on};

#[test]
fn table_at_reads_versions_and_timestamps() {
    let fixture = Fixture::new();
    let history = block_on(fixture.catalog().history("pairs")).unwrap();
    // The millisecond before commit 2's time, as `\history` shows it, reads version 1.
    let between = history[2].timestamp - chrono::Duration::milliseconds(1);
    let v1_time = between.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let script = format!(
        "SELECT count(*) AS n FROM pairs;\n\
         SELECT count(*) AS n FROM table_at('pairs', 0);\n\
         SELECT count(*) AS n FROM table_at('pairs', 1);\n\
         SELECT max(id) AS n FROM table_at('pairs', '{v1_time}');\n\
         SELECT count(*) AS n FROM table_at('pairs', 2) AS new JOIN table_at('pairs', 1) AS old USING (id);\n"
    );
    let run = fixture.run(&["--format", "csv"], &script);
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""), "{run:?}");
    assert_eq!(run.stdout, "n\n3\nn\n0\nn\n2\nn\n2\nn\n2\n");
    // The same rows as the catalog's own reader returns for version 1.
    let rows: usize = block_on(fixture.catalog().read("pairs", At::Version(1)))
        .unwrap()
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(rows, 2);
}

#[test]
fn table_at_errors_name_the_problem() {
    let fixture = Fixture::new();
    let run = fixture.run(&["-c", "SELECT * FROM table_at('pairs', 9)"], "");
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr
            .contains("table \"pairs\" has no version 9; its versions are 0..=2"),
        "{}",
        run.stderr
    );
    let run = fixture.run(&["-c", "SELECT * FROM table_at('nope', 1)"], "");
    assert!(
        run.stderr
            .contains("unknown table \"nope\"; tables in this catalog: notes, pairs"),
        "{}",
        run.stderr
    );
}
