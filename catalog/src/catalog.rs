//! The catalog root: where it is, how it is recognised, which tables it holds.
//!
//! Layout: `ROOT/_negopt_catalog.json` marks the directory as a catalog; each table is a Delta
//! table in `ROOT/<name>/` (its log in `ROOT/<name>/_delta_log/`).

use std::path::{Path, PathBuf};

use url::Url;

use crate::error::{CatalogError, Result};

/// File that marks a directory as a catalog root.
const MARKER: &str = "_negopt_catalog.json";
/// Version of the on-disk layout written into the marker.
const FORMAT: u64 = 1;
/// Default catalog root, relative to the working directory.
const DEFAULT_ROOT: &str = "npdb";
/// Environment variable that overrides the default root.
const ROOT_ENV: &str = "NEGOPT_CATALOG";

/// A directory of named, versioned Delta Lake tables. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Catalog {
    root: PathBuf,
}

impl Catalog {
    /// The catalog root to use: the `--catalog` flag if given, else `$NEGOPT_CATALOG`, else `./npdb`.
    pub fn root_dir(cli: Option<PathBuf>) -> PathBuf {
        cli.or_else(|| std::env::var_os(ROOT_ENV).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
    }

    /// Opens an existing catalog.
    pub fn open(root: impl AsRef<Path>) -> Result<Catalog> {
        let root = root.as_ref();
        let not_a_catalog = |reason: &str| {
            CatalogError::NotACatalog {
            path: root.to_path_buf(),
            reason: reason.to_string(),
            help: "create one with `etl crawl` or point --catalog / NEGOPT_CATALOG at an existing catalog".into(),
        }
        };
        if !root.exists() {
            return Err(not_a_catalog("the directory does not exist"));
        }
        if !root.is_dir() {
            return Err(not_a_catalog("it is not a directory"));
        }
        let marker = root.join(MARKER);
        if !marker.is_file() {
            return Err(not_a_catalog(&format!("it has no {MARKER} marker file")));
        }
        let text = std::fs::read_to_string(&marker).map_err(CatalogError::io(&marker))?;
        let format = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("format").and_then(|f| f.as_u64()));
        match format {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(not_a_catalog(&format!(
                    "its layout format is {other}, this build reads format {FORMAT}"
                )));
            }
            None => return Err(not_a_catalog(&format!("its {MARKER} marker is damaged"))),
        }
        let root = std::path::absolute(root).map_err(CatalogError::io(root))?;
        Ok(Catalog { root })
    }

    /// Opens the catalog at `root`, creating it if the directory is missing or empty. A non-empty
    /// directory without the marker is refused rather than turned into a catalog.
    pub fn open_or_create(root: impl AsRef<Path>) -> Result<Catalog> {
        let root = root.as_ref();
        if root.join(MARKER).is_file() {
            return Catalog::open(root);
        }
        if root.exists() {
            let mut entries = std::fs::read_dir(root).map_err(CatalogError::io(root))?;
            if entries.next().is_some() {
                return Err(CatalogError::NotACatalog {
                    path: root.to_path_buf(),
                    reason: format!("the directory is not empty and has no {MARKER} marker"),
                    help: "choose an empty or new directory for the catalog".into(),
                });
            }
        }
        std::fs::create_dir_all(root).map_err(CatalogError::io(root))?;
        let marker = root.join(MARKER);
        let body = serde_json::json!({ "format": FORMAT, "tool": "negopt" }).to_string();
        std::fs::write(&marker, body).map_err(CatalogError::io(&marker))?;
        Catalog::open(root)
    }

    /// The absolute path of the catalog root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The names of all tables, sorted.
    pub async fn list_tables(&self) -> Result<Vec<String>> {
        self.table_names()
    }

    pub(crate) fn table_names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(CatalogError::io(&self.root))? {
            let entry = entry.map_err(CatalogError::io(&self.root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if valid_name(&name) && entry.path().join("_delta_log").is_dir() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// The directory of table `name` (which need not exist yet).
    pub(crate) fn table_dir(&self, name: &str) -> Result<PathBuf> {
        if !valid_name(name) {
            return Err(CatalogError::InvalidName {
                name: name.to_string(),
            });
        }
        Ok(self.root.join(name))
    }

    /// The directory of an existing table, or `UnknownTable` naming the tables that exist.
    pub(crate) fn existing_table_dir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.table_dir(name)?;
        if dir.join("_delta_log").is_dir() {
            Ok(dir)
        } else {
            Err(CatalogError::UnknownTable {
                name: name.to_string(),
                existing: self.table_names()?,
            })
        }
    }

    pub(crate) fn table_url(dir: &Path) -> Result<Url> {
        Url::from_directory_path(dir).map_err(|()| CatalogError::InvalidInput {
            table: dir.display().to_string(),
            detail: "the table path cannot be expressed as a file URL".into(),
        })
    }
}

/// Table names are SQL-friendly identifiers: `[a-z][a-z0-9_]{0,62}`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 63
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sql_identifiers() {
        for good in ["raw_pairs", "a", "negative_prompts_db", "t2"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "Raw", "2t", "_x", "a-b", "a b", "a.b", &"x".repeat(64)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
