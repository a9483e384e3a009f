//! The on-disk cache of compiled kernels, so a training run pays NVRTC's seconds once per
//! source change, not once per process. Entries are keyed by a SHA-256 over the family's
//! sources, the target, NVRTC's version and the options; a changed key simply misses.
//! Writes go to a temporary file and are renamed into place, so a crash leaves no half entry.

use crate::arch::Arch;
use crate::compiler::Compiled;
use crate::error::{Error, Result};
use crate::family::Family;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A folder of `<family>-<arch>-<key>.ptx` / `.cubin` files.
#[derive(Debug, Clone)]
pub struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    /// A cache in `dir` (created on first store).
    pub fn new(dir: impl Into<PathBuf>) -> DiskCache {
        DiskCache { dir: dir.into() }
    }

    /// `$NEGOPT_KERNEL_CACHE`, else `$XDG_CACHE_HOME/negopt/kernels`, else
    /// `~/.cache/negopt/kernels`, else `./.cache/negopt/kernels`.
    pub fn default_location() -> DiskCache {
        let dir = if let Some(dir) = std::env::var_os("NEGOPT_KERNEL_CACHE") {
            PathBuf::from(dir)
        } else if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME") {
            Path::new(&xdg).join("negopt/kernels")
        } else if let Some(home) = std::env::var_os("HOME") {
            Path::new(&home).join(".cache/negopt/kernels")
        } else {
            PathBuf::from(".cache/negopt/kernels")
        };
        DiskCache { dir }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Hex SHA-256 over the parts, each length-prefixed so no two part lists collide.
    pub fn key(parts: &[&str]) -> String {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        hex::encode(hasher.finalize())
    }

    fn path(&self, family: Family, arch: Arch, key: &str, ext: &str) -> PathBuf {
        self.dir
            .join(format!("{}-{}-{}.{ext}", family.name(), arch, &key[..32]))
    }

    /// The cached compilation, if present and complete.
    pub fn load(&self, family: Family, arch: Arch, key: &str) -> Option<Compiled> {
        let ptx = std::fs::read_to_string(self.path(family, arch, key, "ptx")).ok()?;
        let cubin = if arch.is_real() {
            Some(std::fs::read(self.path(family, arch, key, "cubin")).ok()?)
        } else {
            None
        };
        Some(Compiled {
            ptx,
            cubin,
            from_cache: true,
            log: String::new(),
        })
    }

    /// Stores a compilation (CUBIN first, so a present `.ptx` implies a complete entry).
    pub fn store(&self, family: Family, arch: Arch, key: &str, compiled: &Compiled) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|source| Error::Cache {
            path: self.dir.clone(),
            source,
        })?;
        if let Some(cubin) = &compiled.cubin {
            write_atomically(&self.path(family, arch, key, "cubin"), cubin)?;
        }
        write_atomically(
            &self.path(family, arch, key, "ptx"),
            compiled.ptx.as_bytes(),
        )
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let err = |source| Error::Cache {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_changes_with_every_part() {
        let base = DiskCache::key(&["gemm", "src", "80"]);
        assert_eq!(base, DiskCache::key(&["gemm", "src", "80"]));
        assert_ne!(base, DiskCache::key(&["gemm", "src", "90"]));
        assert_ne!(base, DiskCache::key(&["gemm", "src2", "80"]));
        // Length prefixes keep part boundaries: ("ab", "c") differs from ("a", "bc").
        assert_ne!(DiskCache::key(&["ab", "c"]), DiskCache::key(&["a", "bc"]));
    }

    #[test]
    fn store_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(dir.path().join("k"));
        let key = DiskCache::key(&["x"]);
        assert!(cache.load(Family::Cast, Arch::Sm90a, &key).is_none());
        let compiled = Compiled {
            ptx: ".visible .entry cast_f32_forward_v1_bf16(".into(),
            cubin: Some(vec![1, 2, 3]),
            from_cache: false,
            log: String::new(),
        };
        cache
            .store(Family::Cast, Arch::Sm90a, &key, &compiled)
            .unwrap();
        let hit = cache.load(Family::Cast, Arch::Sm90a, &key).unwrap();
        assert!(hit.from_cache);
        assert_eq!(hit.ptx, compiled.ptx);
        assert_eq!(hit.cubin, Some(vec![1, 2, 3]));
        // Another arch or key misses.
        assert!(cache.load(Family::Cast, Arch::Compute80, &key).is_none());
        assert!(
            cache
                .load(Family::Cast, Arch::Sm90a, &DiskCache::key(&["y"]))
                .is_none()
        );
    }
}
