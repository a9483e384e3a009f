//! Reading a table's Delta log directly: which versions exist (checked for gaps, so a missing
//! commit file is reported as damage instead of silently skipped) and what each commit recorded.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::commit::{Commit, CommitRecord};
use crate::error::{CatalogError, Result};

/// Key of the negopt provenance inside a Delta `commitInfo`.
pub(crate) const PROVENANCE_KEY: &str = "negopt";

/// The commit versions present in `table_dir/_delta_log`, checked to be contiguous.
pub(crate) fn versions(table: &str, table_dir: &Path) -> Result<Vec<u64>> {
    let log_dir = table_dir.join("_delta_log");
    let damaged = |detail: String| CatalogError::DamagedLog {
        table: table.to_string(),
        log_dir: log_dir.clone(),
        detail,
    };
    let mut versions = Vec::new();
    let mut checkpoints = Vec::new();
    for entry in std::fs::read_dir(&log_dir).map_err(CatalogError::io(&log_dir))? {
        let name = entry.map_err(CatalogError::io(&log_dir))?.file_name();
        let name = name.to_string_lossy();
        let Some((stem, ext)) = name.split_once('.') else {
            continue;
        };
        if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let v: u64 = stem.parse().expect("20 ASCII digits fit in u64");
        match ext {
            "json" => versions.push(v),
            e if e.starts_with("checkpoint") => checkpoints.push(v),
            _ => {}
        }
    }
    versions.sort_unstable();
    let Some(&first) = versions.first() else {
        return Err(damaged("the log holds no commit files".into()));
    };
    if first > 0 && !checkpoints.iter().any(|&c| c + 1 >= first) {
        return Err(damaged(format!(
            "commit file {:020}.json is missing (the log starts at version {first} with no checkpoint before it)",
            first - 1
        )));
    }
    for pair in versions.windows(2) {
        if pair[1] != pair[0] + 1 {
            return Err(damaged(format!(
                "commit file {:020}.json is missing (versions {} and {} exist)",
                pair[0] + 1,
                pair[0],
                pair[1]
            )));
        }
    }
    Ok(versions)
}

/// The commit record of `version`, parsed from its log file.
pub(crate) fn commit_record(table: &str, table_dir: &Path, version: u64) -> Result<CommitRecord> {
    let log_dir = table_dir.join("_delta_log");
    let path = log_dir.join(format!("{version:020}.json"));
    let text = std::fs::read_to_string(&path).map_err(CatalogError::io(&path))?;
    let damaged = |detail: String| CatalogError::DamagedLog {
        table: table.to_string(),
        log_dir: log_dir.clone(),
        detail: format!("{}: {detail}", path.display()),
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let action: serde_json::Value =
            serde_json::from_str(line).map_err(|e| damaged(format!("invalid JSON: {e}")))?;
        let Some(info) = action.get("commitInfo") else {
            continue;
        };
        let millis = info
            .get("timestamp")
            .and_then(|t| t.as_i64())
            .ok_or_else(|| damaged("commitInfo has no timestamp".into()))?;
        let timestamp = DateTime::<Utc>::from_timestamp_millis(millis)
            .ok_or_else(|| damaged(format!("timestamp {millis} is out of range")))?;
        let delta_operation = info
            .get("operation")
            .and_then(|o| o.as_str())
            .unwrap_or("UNKNOWN")
            .to_string();
        let commit = match info.get(PROVENANCE_KEY) {
            Some(value) => Some(
                serde_json::from_value::<Commit>(value.clone())
                    .map_err(|e| damaged(format!("invalid negopt provenance: {e}")))?,
            ),
            None => None,
        };
        return Ok(CommitRecord {
            version,
            timestamp,
            delta_operation,
            commit,
        });
    }
    Err(damaged("no commitInfo action".into()))
}
