//! Every result format, on stdout and through `--output`, and the three ways in: -c, -f, stdin.

use crate::support::Fixture;

const QUERY: &str = "SELECT id, negative_prompt, model FROM pairs ORDER BY id";

#[test]
fn table_format_with_footer_and_maxrows() {
    let fixture = Fixture::new();
    let run = fixture.run(&["-c", QUERY], "");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stdout,
        "+----+----------------------+-------+\n\
         | id | negative_prompt      | model |\n\
         +----+----------------------+-------+\n\
         | 1  | lowres, (blurry:1.2) | sd15  |\n\
         | 2  | EasyNegative, lowres | sdxl  |\n\
         | 3  |                      | NULL  |\n\
         +----+----------------------+-------+\n\
         (3 rows)\n"
    );
    let run = fixture.run(&["--maxrows", "1", "-c", QUERY], "");
    assert_eq!(
        run.stdout,
        "+----+----------------------+-------+\n\
         | id | negative_prompt      | model |\n\
         +----+----------------------+-------+\n\
         | 1  | lowres, (blurry:1.2) | sd15  |\n\
         +----+----------------------+-------+\n\
         (3 rows; first 1 shown, see --maxrows)\n"
    );
    let run = fixture.run(&["--quiet", "-c", "SELECT id FROM pairs WHERE id > 9"], "");
    assert_eq!(run.stdout, "+----+\n| id |\n+----+\n+----+\n");
}

#[test]
fn csv_tsv_json_ndjson_on_stdout() {
    let fixture = Fixture::new();
    let out = |format: &str| fixture.run(&["--format", format, "-c", QUERY], "").stdout;
    assert_eq!(
        out("csv"),
        "id,negative_prompt,model\n1,\"lowres, (blurry:1.2)\",sd15\n2,\"EasyNegative, lowres\",sdxl\n3,,\n"
    );
    assert_eq!(
        out("tsv"),
        "id\tnegative_prompt\tmodel\n1\tlowres, (blurry:1.2)\tsd15\n2\tEasyNegative, lowres\tsdxl\n3\t\t\n"
    );
    assert_eq!(
        out("json"),
        "[{\"id\":1,\"negative_prompt\":\"lowres, (blurry:1.2)\",\"model\":\"sd15\"},\
         {\"id\":2,\"negative_prompt\":\"EasyNegative, lowres\",\"model\":\"sdxl\"},\
         {\"id\":3,\"negative_prompt\":\"\",\"model\":null}]\n"
    );
    assert_eq!(
        out("ndjson"),
        "{\"id\":1,\"negative_prompt\":\"lowres, (blurry:1.2)\",\"model\":\"sd15\"}\n\
         {\"id\":2,\"negative_prompt\":\"EasyNegative, lowres\",\"model\":\"sdxl\"}\n\
         {\"id\":3,\"negative_prompt\":\"\",\"model\":null}\n"
    );
}

#[test]
fn output_files_by_extension_round_trip() {
    let fixture = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    for (name, expected) in [
        ("out.csv", "id,model\n1,sd15\n2,sdxl\n3,\n"),
        (
            "out.json",
            "[{\"id\":1,\"model\":\"sd15\"},{\"id\":2,\"model\":\"sdxl\"},{\"id\":3,\"model\":null}]\n",
        ),
        (
            "out.ndjson",
            "{\"id\":1,\"model\":\"sd15\"}\n{\"id\":2,\"model\":\"sdxl\"}\n{\"id\":3,\"model\":null}\n",
        ),
    ] {
        let path = dir.path().join(name);
        let run = fixture.run(
            &[
                "--output",
                path.to_str().unwrap(),
                "-c",
                "SELECT id, model FROM pairs ORDER BY id",
            ],
            "",
        );
        assert_eq!(run.code, Some(0), "{run:?}");
        assert_eq!(run.stdout, format!("wrote 3 rows to {}\n", path.display()));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), expected, "{name}");
    }

    let path = dir.path().join("out.parquet");
    let run = fixture.run(
        &[
            "-q",
            "-o",
            path.to_str().unwrap(),
            "-c",
            "SELECT id, model FROM pairs ORDER BY id",
        ],
        "",
    );
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), ""), "{run:?}");
    let file = std::fs::File::open(&path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<_> = reader.map(Result::unwrap).collect();
    let table = arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    assert_eq!(
        table,
        "+----+-------+\n| id | model |\n+----+-------+\n| 1  | sd15  |\n| 2  | sdxl  |\n| 3  |       |\n+----+-------+"
    );
}

#[test]
fn output_takes_one_query_and_known_extensions() {
    let fixture = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.csv");
    // A usage error found late: the first result is kept, the run ends with exit code 2.
    let run = fixture.run(
        &[
            "-o",
            path.to_str().unwrap(),
            "-c",
            "SELECT 1 AS a; SELECT 2 AS b",
        ],
        "",
    );
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("takes the result of one query"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\n1\n");
    let run = fixture.run(&["-o", "x.xlsx", "-c", "SELECT 1"], "");
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .starts_with("sql: --output x.xlsx: unknown extension"),
        "{}",
        run.stderr
    );
}

#[test]
fn command_file_and_stdin_run_the_same_script() {
    let fixture = Fixture::new();
    let script = "SELECT count(*) AS n\n  FROM pairs;\nSELECT 'x;y' AS s -- a comment; still the same statement\n;\n";
    let expected = "n\n3\ns\nx;y\n";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("script.sql");
    std::fs::write(&file, script).unwrap();
    for run in [
        fixture.run(&["--format", "csv", "-c", script], ""),
        fixture.run(&["--format", "csv", "-f", file.to_str().unwrap()], ""),
        fixture.run(&["--format", "csv"], script),
    ] {
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr.as_str()),
            (Some(0), expected, "")
        );
    }
    // A last statement without `;` still runs.
    assert_eq!(
        fixture.run(&["--format", "csv"], "SELECT 7 AS n").stdout,
        "n\n7\n"
    );
}
