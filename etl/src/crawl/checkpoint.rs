//! The crawl checkpoint: the frontier (waiting and in-flight requests, which carry each source's
//! cursor in their URLs), the URLs seen, and the counters, written with rkyv after every
//! committed batch. Writes go to `PATH.tmp`, are synced, then renamed over `PATH`, so a kill at
//! any instant leaves either the old or the new checkpoint, never a torn one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rkyv::rancor;

use crate::sources::Request;

/// Format version written into every checkpoint.
pub const FORMAT: u32 = 1;

/// Everything needed to continue a crawl.
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Checkpoint {
    /// [`FORMAT`] when written.
    pub format: u32,
    /// The sources crawled, in order.
    pub sources: Vec<String>,
    /// Requests not yet committed.
    pub pending: Vec<Request>,
    /// URLs already queued.
    pub seen: Vec<String>,
    /// Counters so far (reason, count).
    pub counters: Vec<(String, u64)>,
}

/// Why a checkpoint could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing the file failed.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not a checkpoint of this format.
    #[error(
        "checkpoint {path} is damaged or of another version: {message} (help: delete it and crawl without --resume)"
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `checkpoint` to `path` atomically (temp file, fsync, rename).
pub fn save(path: &Path, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
    let bytes =
        rkyv::to_bytes::<rancor::Error>(checkpoint).map_err(|e| CheckpointError::Damaged {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(&bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io(path))
}

/// Reads the checkpoint at `path`; `Ok(None)` when there is none.
pub fn load(path: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    let mut aligned = rkyv::util::AlignedVec::<16>::new();
    aligned.extend_from_slice(&bytes);
    let damaged = |message: String| CheckpointError::Damaged {
        path: path.to_path_buf(),
        message,
    };
    let checkpoint = rkyv::from_bytes::<Checkpoint, rancor::Error>(&aligned)
        .map_err(|e| damaged(e.to_string()))?;
    if checkpoint.format != FORMAT {
        return Err(damaged(format!(
            "format {} (expected {FORMAT})",
            checkpoint.format
        )));
    }
    Ok(Some(checkpoint))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::RequestKind;

    #[test]
    fn checkpoint_round_trips_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/crawl.checkpoint");
        assert!(load(&path).unwrap().is_none());
        let cp = Checkpoint {
            format: FORMAT,
            sources: vec!["civitai".into()],
            pending: vec![Request::new(
                "civitai",
                "http://h/x?cursor=c9",
                RequestKind::Listing,
            )],
            seen: vec!["http://h/x".into()],
            counters: vec![("retries".into(), 3)],
        };
        save(&path, &cp).unwrap();
        assert_eq!(load(&path).unwrap(), Some(cp.clone()));
        assert!(!path.with_extension("tmp").exists());
        let mut bytes = fs::read(&path).unwrap();
        bytes.truncate(bytes.len() / 2);
        fs::write(&path, &bytes).unwrap();
        let err = load(&path).unwrap_err();
        assert!(err.to_string().contains("is damaged"), "{err}");
    }
}
