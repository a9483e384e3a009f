//! Meta-commands through stdin scripts: `\d`, `\d NAME`, `\history`, `\timing`, `\format`, `\?`, `\q`.

use crate::support::Fixture;

#[test]
fn list_tables_with_versions_and_row_counts() {
    let fixture = Fixture::new();
    let run = fixture.run(&[], "\\d\n");
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""), "{run:?}");
    assert_eq!(
        run.stdout,
        "+-------+---------+------+------+\n\
         | table | version | rows | note |\n\
         +-------+---------+------+------+\n\
         | notes | 1       | 1    |      |\n\
         | pairs | 2       | 3    |      |\n\
         +-------+---------+------+------+\n\
         (2 rows)\n"
    );
}

#[test]
fn describe_a_table() {
    let fixture = Fixture::new();
    let run = fixture.run(&["--format", "csv"], "\\d pairs\n");
    assert_eq!(
        run.stdout,
        "column,type,nullable\nid,Int64,no\nprompt,Utf8,yes\nnegative_prompt,Utf8,yes\nmodel,Utf8,yes\n"
    );
    let run = fixture.run(&[], "\\d nope\n");
    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.stderr,
        "sql: stdin:1: unknown table \"nope\"; tables in this catalog: notes, pairs\n"
    );
}

#[test]
fn history_shows_operations_params_and_lineage() {
    let fixture = Fixture::new();
    let run = fixture.run(&["--format", "csv"], "\\history pairs\n");
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines: Vec<String> = run
        .stdout
        .lines()
        .map(|line| {
            // The commit time varies: check its shape, then blank it out.
            let (version, rest) = line.split_once(',').unwrap();
            let (time, rest) = rest.split_once(',').unwrap();
            if version != "version" {
                assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
            }
            format!("{version},T,{rest}")
        })
        .collect();
    assert_eq!(
        lines,
        [
            "version,T,operation,params,inputs",
            "0,T,create,,",
            "1,T,crawl,\"{\"\"page\"\":1}\",",
            "2,T,crawl,,notes@1",
        ]
    );
}

#[test]
fn timing_format_help_and_quit() {
    let fixture = Fixture::new();
    let run = fixture.run(
        &[],
        "\\timing\n\\format json\nSELECT 1 AS a;\n\\timing off\n\\format csv\nSELECT 2 AS b;\n\\format\n\\q\nSELECT 3 AS c;\n",
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stdout,
        "Timing is on.\nOutput format is json.\n[{\"a\":1}]\nTiming is off.\nOutput format is csv.\nb\n2\nOutput format is csv.\n"
    );
    // Timing covers statements only, and was on for `SELECT 1` alone.
    let times: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(times.len(), 1, "{}", run.stderr);
    for line in times {
        let ms = line
            .strip_prefix("Time: ")
            .and_then(|l| l.strip_suffix(" ms"))
            .unwrap();
        assert!(
            ms.parse::<f64>().unwrap() >= 0.0 && ms.split_once('.').unwrap().1.len() == 3,
            "{line}"
        );
    }

    let help = fixture.run(&[], "\\?\n").stdout;
    assert!(help.starts_with("Meta-commands\n  \\d "), "{help}");
    assert!(
        help.contains("  jaccard(a, b)\n")
            && help.contains("SELECT token_count('(masterpiece:1.2), 1girl');  -- 4"),
        "{help}"
    );
}

#[test]
fn unknown_meta_commands_stop_a_script() {
    let fixture = Fixture::new();
    let run = fixture.run(&[], "SELECT 1 AS a;\n\\x\nSELECT 2 AS b;\n");
    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.stderr,
        "sql: stdin:2: unknown meta-command \\x\nhelp: \\? lists the meta-commands\n"
    );
    assert!(!run.stdout.contains("| b |"), "{}", run.stdout);
}

/// `information_schema` shows types as queries see them (DataFusion reads Delta strings as
/// `Utf8View`); `\d NAME` shows the types the catalog stores.
#[test]
fn information_schema_lists_catalog_tables_and_columns() {
    let fixture = Fixture::new();
    let run = fixture.run(
        &["--format", "csv"],
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name;\n\
         SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'notes';\n",
    );
    assert_eq!((run.code, run.stderr.as_str()), (Some(0), ""), "{run:?}");
    assert_eq!(
        run.stdout,
        "table_name\nnotes\npairs\ncolumn_name,data_type\nnote,Utf8View\n"
    );
}
