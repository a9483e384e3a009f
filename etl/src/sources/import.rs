//! `etl import`: local files into `raw_pairs` — the paper's published release (parquet or CSV
//! with columns `id, created_at, prompt, negative_prompt, likes, sampler, height, steps, width,
//! cursor, url, cfg_scale, model`) and generic CSV / JSONL / Parquet through a column mapping.
//!
//! Files are read with DataFusion; every mapped column is cast to text and read leniently (as
//! the JSON sources do), rows without an id or prompt are dropped and counted. Records go
//! through the crawl's [`Store`], so keys, upserts and commits follow the same rules; there is
//! no page, so `page_sha256` is the file's SHA-256.
//!
//! Test: `cargo test -p negopt-etl import`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use chrono::{DateTime, NaiveDateTime, Utc};
use clap::Args;
use datafusion::common::Column;
use datafusion::logical_expr::{Expr, cast, lit};
use datafusion::prelude::{CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionContext};
use negopt_catalog::Catalog;
use sha2::{Digest, Sha256};

use super::PairRecord;
use crate::crawl::output::{PairRow, Revisit, Store, StoreError};

/// The fields a mapping can fill, with the paper's column name for each.
pub const FIELDS: [(&str, &str); 14] = [
    ("item_id", "id"),
    ("created_at", "created_at"),
    ("prompt", "prompt"),
    ("negative_prompt", "negative_prompt"),
    ("likes", "likes"),
    ("sampler", "sampler"),
    ("height", "height"),
    ("steps", "steps"),
    ("width", "width"),
    ("url", "url"),
    ("cfg_scale", "cfg_scale"),
    ("model", "model"),
    ("seed", "seed"),
    ("nsfw_level", "nsfw_level"),
];

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

impl Format {
    /// The format a file name's extension says.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }
}

/// `etl import`: local files into `raw_pairs`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Import local CSV / JSONL / Parquet files (e.g. the paper's release) into raw_pairs",
    long_about = "Reads each file with DataFusion, maps its columns to raw_pairs fields (by default \
                  the column names of the paper's public release: id, created_at, prompt, \
                  negative_prompt, likes, sampler, height, steps, width, url, cfg_scale, model), \
                  and stores the rows keyed by (source, item_id), one commit per batch."
)]
pub struct ImportArgs {
    /// Files to import.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// File format (default: from the extension).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Column mapping as FIELD=COLUMN (repeatable), e.g. `--map prompt=text --map item_id=uid`.
    /// Fields: item_id, created_at, prompt, negative_prompt, likes, sampler, height, steps,
    /// width, url, cfg_scale, model, seed, nsfw_level.
    #[arg(long = "map", value_name = "FIELD=COLUMN")]
    pub map: Vec<String>,
    /// The `source` value stored with every row.
    #[arg(long, default_value = "playground")]
    pub source: String,
    /// Keep rows with at least this many likes (rows without a likes column are kept).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub min_likes: i64,
    /// Rows per catalog commit.
    #[arg(long, default_value_t = 50_000, value_name = "N")]
    pub batch_items: usize,
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A flag is unusable.
    #[error("{0}")]
    Args(String),
    /// A file could not be read.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The catalog failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<negopt_catalog::CatalogError> for ImportError {
    fn from(e: negopt_catalog::CatalogError) -> ImportError {
        ImportError::Store(e.into())
    }
}

/// What an import did, counted by reason.
pub type Counts = BTreeMap<String, u64>;

/// The field → column mapping: the paper's names, overridden by `--map`.
pub fn mapping(flags: &[String]) -> Result<BTreeMap<String, String>, ImportError> {
    let mut map: BTreeMap<String, String> = FIELDS
        .iter()
        .map(|(f, c)| (f.to_string(), c.to_string()))
        .collect();
    for kv in flags {
        let (field, column) = kv
            .split_once('=')
            .ok_or_else(|| ImportError::Args(format!("--map {kv:?}: expected FIELD=COLUMN")))?;
        if !map.contains_key(field) {
            let known: Vec<&str> = FIELDS.iter().map(|(f, _)| *f).collect();
            return Err(ImportError::Args(format!(
                "--map {kv:?}: unknown field `{field}` (fields: {})",
                known.join(", ")
            )));
        }
        map.insert(field.to_string(), column.to_string());
    }
    Ok(map)
}

/// Reads one file into records; rows without id or prompt, or under `min_likes`, are counted.
pub async fn read_file(
    path: &Path,
    format: Format,
    map: &BTreeMap<String, String>,
    source: &str,
    min_likes: i64,
    counts: &mut Counts,
) -> Result<Vec<PairRecord>, ImportError> {
    let file_err = |message: String| ImportError::File {
        path: path.to_path_buf(),
        message,
    };
    let ctx = SessionContext::new();
    let name = path
        .to_str()
        .ok_or_else(|| file_err("path is not UTF-8".into()))?;
    let df = match format {
        Format::Csv => ctx.read_csv(name, CsvReadOptions::new()).await,
        Format::Jsonl => {
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            ctx.read_json(name, JsonReadOptions::default().file_extension(ext))
                .await
        }
        Format::Parquet => ctx.read_parquet(name, ParquetReadOptions::default()).await,
    }
    .map_err(|e| file_err(e.to_string()))?;
    let present: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    for required in ["item_id", "prompt"] {
        if !present.contains(&map[required]) {
            return Err(file_err(format!(
                "no column `{}` for {required} (help: --map {required}=COLUMN; columns: {})",
                map[required],
                present.join(", ")
            )));
        }
    }
    let exprs: Vec<Expr> = FIELDS
        .iter()
        .map(|(field, _)| {
            let column = &map[*field];
            let value = if present.contains(column) {
                cast(
                    Expr::Column(Column::new_unqualified(column)),
                    DataType::Utf8,
                )
            } else {
                cast(lit(datafusion::scalar::ScalarValue::Null), DataType::Utf8)
            };
            value.alias(*field)
        })
        .collect();
    let batches = df
        .select(exprs)
        .map_err(|e| file_err(e.to_string()))?
        .collect()
        .await
        .map_err(|e| file_err(e.to_string()))?;
    let mut out = Vec::new();
    for b in batches {
        let cols: Vec<_> = (0..FIELDS.len())
            .map(|i| b.column(i).as_string::<i32>().clone())
            .collect();
        let get = |f: usize, i: usize| {
            let c = &cols[f];
            (!c.is_null(i)).then(|| c.value(i).to_string())
        };
        let num = |f: usize, i: usize| get(f, i).and_then(|s| s.trim().parse::<f64>().ok());
        for i in 0..b.num_rows() {
            let (Some(item_id), Some(prompt)) = (get(0, i), get(2, i).filter(|p| !p.is_empty()))
            else {
                *counts
                    .entry("dropped: no item id or prompt".into())
                    .or_default() += 1;
                continue;
            };
            let likes = num(4, i).map(|v| v as i64);
            if likes.is_some_and(|l| l < min_likes) {
                *counts.entry("dropped: below min likes".into()).or_default() += 1;
                continue;
            }
            out.push(PairRecord {
                source: source.to_string(),
                item_id,
                url: get(9, i).unwrap_or_default(),
                prompt,
                negative_prompt: get(3, i),
                model: get(11, i).filter(|s| !s.is_empty()),
                sampler: get(5, i).filter(|s| !s.is_empty()),
                steps: num(7, i).map(|v| v as i64),
                cfg_scale: num(10, i),
                seed: num(12, i).map(|v| v as i64),
                width: num(8, i).map(|v| v as i32),
                height: num(6, i).map(|v| v as i32),
                likes,
                created_at: get(1, i).and_then(|s| parse_time(&s)),
                nsfw_level: get(13, i).filter(|s| !s.is_empty()),
            });
        }
    }
    Ok(out)
}

/// RFC 3339, or a naive `YYYY-MM-DD[ T]HH:MM:SS[.f]` taken as UTC.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), f).ok())
        .map(|t| t.and_utc())
}

/// Runs `etl import` into the catalog at `catalog_root`.
pub async fn run(args: &ImportArgs, catalog_root: PathBuf) -> Result<ExitCode, ImportError> {
    let map = mapping(&args.map)?;
    let catalog = Catalog::open_or_create(&catalog_root)?;
    let mut store = Store::open(catalog, Revisit::Upsert).await?;
    let mut counts = Counts::new();
    for path in &args.files {
        let format = args
            .format
            .or_else(|| Format::from_path(path))
            .ok_or_else(|| {
                ImportError::Args(format!(
                    "{}: unknown format (help: --format csv|jsonl|parquet)",
                    path.display()
                ))
            })?;
        let bytes = std::fs::read(path).map_err(|e| ImportError::File {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let sha = hex::encode(Sha256::digest(&bytes));
        drop(bytes);
        let records = read_file(
            path,
            format,
            &map,
            &args.source,
            args.min_likes,
            &mut counts,
        )
        .await?;
        let fetched_at = Utc::now();
        for chunk in records.chunks(args.batch_items.max(1)) {
            let rows = chunk
                .iter()
                .map(|r| PairRow {
                    record: r.clone(),
                    fetched_at,
                    page_sha256: sha.clone(),
                })
                .collect();
            let params = serde_json::json!({ "import": path.display().to_string() });
            let c = store.commit(Vec::new(), rows, params).await?;
            *counts.entry("pairs new".into()).or_default() += c.pairs_new as u64;
            *counts.entry("pairs updated".into()).or_default() += c.pairs_updated as u64;
        }
    }
    println!("import finished into {}", catalog_root.display());
    for (k, v) in &counts {
        println!("  {k:<40} {v:>10}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn import_reads_paper_csv_and_mapped_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("negopt_full.csv");
        std::fs::write(
            &csv,
            "id,created_at,prompt,negative_prompt,likes,sampler,height,steps,width,cursor,url,cfg_scale,model\n\
             a1,2026-01-01T00:00:00Z,\"a cat, red\",blurry,3,k_euler,512,30,768,c1,http://u/a1,7.5,sd\n\
             a2,2026-01-02 10:00:00,a dog,,0,ddim,512,20,512,c2,http://u/a2,7,sd\n\
             a3,,,x,5,,,,,,,,\n",
        )
        .unwrap();
        let map = mapping(&[]).unwrap();
        let mut counts = Counts::new();
        let got = read_file(&csv, Format::Csv, &map, "playground", 1, &mut counts)
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        let r = &got[0];
        assert_eq!(
            (r.item_id.as_str(), r.prompt.as_str()),
            ("a1", "a cat, red")
        );
        assert_eq!(r.negative_prompt.as_deref(), Some("blurry"));
        assert_eq!(
            (r.width, r.height, r.steps, r.cfg_scale),
            (Some(768), Some(512), Some(30), Some(7.5))
        );
        assert_eq!(
            r.created_at.unwrap().to_rfc3339(),
            "2026-01-01T00:00:00+00:00"
        );
        assert_eq!(counts.get("dropped: below min likes"), Some(&1));
        assert_eq!(counts.get("dropped: no item id or prompt"), Some(&1));

        // The same rows as Parquet (written by DataFusion) read the same.
        let parquet = dir.path().join("negopt_full.parquet");
        let ctx = SessionContext::new();
        ctx.read_csv(csv.to_str().unwrap(), CsvReadOptions::new())
            .await
            .unwrap()
            .write_parquet(
                parquet.to_str().unwrap(),
                datafusion::dataframe::DataFrameWriteOptions::new().with_single_file_output(true),
                None,
            )
            .await
            .unwrap();
        let from_parquet = read_file(
            &parquet,
            Format::Parquet,
            &map,
            "playground",
            1,
            &mut Counts::new(),
        )
        .await
        .unwrap();
        assert_eq!(from_parquet, got);

        let jsonl = dir.path().join("x.jsonl");
        std::fs::write(
            &jsonl,
            "{\"uid\": 7, \"text\": \"p\", \"neg\": \"n\"}\n{\"uid\": 8, \"text\": \"q\"}\n",
        )
        .unwrap();
        let map = mapping(&[
            "item_id=uid".into(),
            "prompt=text".into(),
            "negative_prompt=neg".into(),
        ])
        .unwrap();
        let got = read_file(&jsonl, Format::Jsonl, &map, "mine", 0, &mut Counts::new())
            .await
            .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].item_id.as_str(), got[0].negative_prompt.as_deref()),
            ("7", Some("n"))
        );
        assert_eq!(got[1].negative_prompt, None);

        let err = mapping(&["colour=c".into()]).unwrap_err();
        assert!(err.to_string().contains("unknown field `colour`"), "{err}");
        let err = read_file(
            &jsonl,
            Format::Jsonl,
            &mapping(&[]).unwrap(),
            "s",
            0,
            &mut Counts::new(),
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("no column `id` for item_id"),
            "{err}"
        );
    }
}
