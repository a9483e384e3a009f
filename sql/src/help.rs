//! The text of `\?`: meta-commands, how to name table versions, the write rules, and the domain
//! functions with their examples (taken from each function's own documentation).

use crate::udf;

const HEADER: &str = r#"Meta-commands
  \d                 tables with latest version and row count
  \d NAME            columns of table NAME
  \history NAME      versions of NAME: time, operation, parameters, inputs (lineage)
  \timing [on|off]   print each statement's run time (no argument toggles)
  \format [NAME]     result format: table, csv, tsv, json, ndjson
  \?                 this help
  \q                 quit (Ctrl-D too); Ctrl-C cancels the running query

Statements end with ';' and may span lines. Tables are named by their catalog name (latest
version); an older version is read with
  SELECT * FROM table_at('negative_prompts_db', 3);
  SELECT * FROM table_at('negative_prompts_db', '2026-11-29T12:00:00Z');
information_schema is on: SHOW TABLES; SHOW COLUMNS FROM name; SELECT * FROM information_schema.columns;

The shell is read-only unless started with --write, which lets
  CREATE TABLE name AS SELECT ...;   INSERT INTO name SELECT ... | VALUES ...;
commit new catalog versions (with the statement and the versions it read as lineage).
CREATE VIEW name AS ... gives a session-only name in any mode.

Prompt functions"#;

/// The help text.
pub fn text() -> String {
    let mut text = HEADER.to_string();
    for function in udf::all() {
        if let Some(doc) = function.documentation() {
            text.push_str(&format!(
                "\n  {}\n    {}",
                doc.syntax_example, doc.description
            ));
            if let Some(example) = &doc.sql_example {
                for line in example.lines() {
                    text.push_str(&format!("\n    {line}"));
                }
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn help_lists_every_meta_command_and_function() {
        let text = super::text();
        for needle in [
            "\\d NAME",
            "\\history NAME",
            "\\timing",
            "\\format",
            "\\q",
            "table_at(",
        ] {
            assert!(text.contains(needle), "{needle}");
        }
        for function in [
            "tags(text)",
            "strip_weights(text)",
            "jaccard(a, b)",
            "a1111_parse(text)",
            "token_count(text)",
        ] {
            assert!(text.contains(function), "{function}");
        }
    }
}
