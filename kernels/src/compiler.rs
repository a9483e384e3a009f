//! Run-time compilation with NVRTC (through cudarc's dynamically loaded bindings), with the
//! on-disk cache in front of it.
//!
//! ```text
//! Family source ─► cache key = sha256(family, sources, arch, NVRTC version, options)
//!                     │ hit: read <dir>/<family>-<arch>-<key>.ptx (+ .cubin)
//!                     └ miss: nvrtcCreateProgram (common.cuh as a named header)
//!                             → nvrtcCompileProgram(--gpu-architecture=…, -I headers)
//!                             → PTX (+ CUBIN for real archs) → write cache
//! ```
//! NVRTC ships in NVIDIA's `nvidia-cuda-nvrtc` wheel; `kernels/ci/fetch-nvrtc.sh` fetches it
//! with the headers and prints the `LD_LIBRARY_PATH` and `NEGOPT_CUDA_INCLUDE` to set.

use crate::arch::Arch;
use crate::cache::DiskCache;
use crate::error::{Error, Result, panic_message};
use crate::family::{COMMON_HEADER, Family};
use cudarc::nvrtc::sys;
use std::ffi::{CStr, CString, c_char, c_int};
use std::path::{Path, PathBuf};

/// Options passed to every compilation (besides the arch and include paths).
const OPTIONS: [&str; 3] = ["-std=c++17", "-lineinfo", "-default-device"];

/// The output of one compilation.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// PTX text (always produced).
    pub ptx: String,
    /// Machine code, for real architectures.
    pub cubin: Option<Vec<u8>>,
    /// Whether this came from the disk cache.
    pub from_cache: bool,
    /// NVRTC's log (warnings); empty for cache hits.
    pub log: String,
}

impl Compiled {
    /// The `.entry` names in the PTX: the kernels this compilation produced.
    pub fn entry_points(&self) -> Vec<String> {
        self.ptx
            .lines()
            .filter_map(|line| {
                let rest = line.trim_start().strip_prefix(".visible .entry ")?;
                Some(rest.split('(').next()?.trim().to_string())
            })
            .collect()
    }
}

/// A handle on a working NVRTC plus the CUDA headers it needs.
#[derive(Debug, Clone)]
pub struct Compiler {
    include_dirs: Vec<PathBuf>,
    version: (i32, i32),
    cache: Option<DiskCache>,
}

impl Compiler {
    /// Finds NVRTC and the CUDA headers, with the default disk cache.
    ///
    /// Headers come from `NEGOPT_CUDA_INCLUDE` (a `:`-separated list), else `$CUDA_HOME/include`,
    /// `$CUDA_PATH/include` or `/usr/local/cuda/include` (plus `include/cccl` beside each).
    pub fn from_env() -> Result<Compiler> {
        let version = nvrtc_version()?;
        let include_dirs = include_dirs_from_env()?;
        Ok(Compiler {
            include_dirs,
            version,
            cache: Some(DiskCache::default_location()),
        })
    }

    /// Replaces the disk cache (`None` turns caching off).
    pub fn with_cache(mut self, cache: Option<DiskCache>) -> Compiler {
        self.cache = cache;
        self
    }

    /// NVRTC's (major, minor) version.
    pub fn version(&self) -> (i32, i32) {
        self.version
    }

    /// Compiles (or fetches from the cache) one family for one target.
    pub fn compile(&self, family: Family, arch: Arch) -> Result<Compiled> {
        let options = self.options(arch);
        let key = DiskCache::key(&[
            family.name(),
            family.source(),
            COMMON_HEADER,
            &format!("{}.{}", self.version.0, self.version.1),
            &options.join("\u{1f}"),
        ]);
        if let Some(cache) = &self.cache
            && let Some(hit) = cache.load(family, arch, &key)
        {
            return Ok(hit);
        }
        let compiled = compile_program(family.name(), family.source(), arch, &options)?;
        if let Some(cache) = &self.cache
            && let Err(e) = cache.store(family, arch, &key, &compiled)
        {
            // The cache only saves time; a read-only home must not stop training.
            tracing::warn!("not caching {family} for {arch}: {e}");
        }
        Ok(compiled)
    }

    /// Compiles a source outside the embedded families (no cache): for experiments and for
    /// testing the error path. `common.cuh` is available to `#include`.
    pub fn compile_source(&self, name: &'static str, source: &str, arch: Arch) -> Result<Compiled> {
        compile_program(name, source, arch, &self.options(arch))
    }

    fn options(&self, arch: Arch) -> Vec<String> {
        let mut options = vec![format!("--gpu-architecture={}", arch.nvrtc_name())];
        options.extend(OPTIONS.iter().map(|s| s.to_string()));
        options.extend(
            self.include_dirs
                .iter()
                .map(|d| format!("--include-path={}", d.display())),
        );
        options
    }
}

/// Loads NVRTC (catching the loader's panic) and asks its version.
fn nvrtc_version() -> Result<(i32, i32)> {
    // SAFETY: only tries to dlopen the library names cudarc knows.
    if !unsafe { sys::is_culib_present() } {
        return Err(Error::NvrtcUnavailable {
            reason: "libnvrtc.so (CUDA 13) not found on the library path".into(),
        });
    }
    let probe = std::panic::catch_unwind(|| {
        let (mut major, mut minor) = (0 as c_int, 0 as c_int);
        // SAFETY: nvrtcVersion writes two ints through valid pointers.
        let status = unsafe { sys::nvrtcVersion(&mut major, &mut minor) };
        (status, major, minor)
    });
    match probe {
        Ok((sys::nvrtcResult::NVRTC_SUCCESS, major, minor)) => Ok((major, minor)),
        Ok((status, _, _)) => Err(Error::NvrtcUnavailable {
            reason: format!("nvrtcVersion failed: {status:?}"),
        }),
        Err(payload) => Err(Error::NvrtcUnavailable {
            reason: panic_message(payload.as_ref()),
        }),
    }
}

fn include_dirs_from_env() -> Result<Vec<PathBuf>> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(list) = std::env::var_os("NEGOPT_CUDA_INCLUDE") {
        candidates.extend(std::env::split_paths(&list));
    } else {
        for var in ["CUDA_HOME", "CUDA_PATH"] {
            if let Some(root) = std::env::var_os(var) {
                candidates.push(Path::new(&root).join("include"));
            }
        }
        candidates.push(PathBuf::from("/usr/local/cuda/include"));
        let with_cccl: Vec<PathBuf> = candidates.iter().map(|d| d.join("cccl")).collect();
        candidates.extend(with_cccl);
    }
    let dirs: Vec<PathBuf> = candidates.into_iter().filter(|d| d.is_dir()).collect();
    if !dirs.iter().any(|d| d.join("cuda_bf16.h").is_file()) {
        return Err(Error::NvrtcUnavailable {
            reason: format!(
                "cuda_bf16.h not found in the include folders {dirs:?} \
                 (set NEGOPT_CUDA_INCLUDE, CUDA_HOME or CUDA_PATH)"
            ),
        });
    }
    Ok(dirs)
}

/// An NVRTC program, destroyed on drop.
struct Program(sys::nvrtcProgram);

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: self.0 came from nvrtcCreateProgram and is destroyed exactly once.
        unsafe {
            sys::nvrtcDestroyProgram(&mut self.0);
        }
    }
}

fn check(status: sys::nvrtcResult, family: &'static str, arch: Arch, what: &str) -> Result<()> {
    if status == sys::nvrtcResult::NVRTC_SUCCESS {
        Ok(())
    } else {
        Err(Error::Compile {
            family,
            arch,
            nvrtc: format!("{what}: {status:?}"),
            log: String::new(),
        })
    }
}

fn compile_program(
    family: &'static str,
    source: &str,
    arch: Arch,
    options: &[String],
) -> Result<Compiled> {
    let source = CString::new(source).map_err(|_| Error::Compile {
        family,
        arch,
        nvrtc: "the source contains a NUL byte".into(),
        log: String::new(),
    })?;
    let name = CString::new(format!("{family}.cu")).expect("family names hold no NUL");
    let header = CString::new(COMMON_HEADER).expect("embedded header holds no NUL byte");
    let header_name = c"common.cuh";
    let headers = [header.as_ptr()];
    let header_names = [header_name.as_ptr()];
    let c_options: Vec<CString> = options
        .iter()
        .map(|o| CString::new(o.as_str()).expect("options hold no NUL"))
        .collect();
    let option_ptrs: Vec<*const c_char> = c_options.iter().map(|o| o.as_ptr()).collect();

    let mut raw = std::ptr::null_mut();
    // SAFETY: every pointer is a live NUL-terminated string owned by this frame; NVRTC copies
    // what it keeps. The program is destroyed by `Program`'s drop.
    let status = unsafe {
        sys::nvrtcCreateProgram(
            &mut raw,
            source.as_ptr(),
            name.as_ptr(),
            1,
            headers.as_ptr(),
            header_names.as_ptr(),
        )
    };
    check(status, family, arch, "nvrtcCreateProgram")?;
    let program = Program(raw);
    // SAFETY: `program` is live; the option pointers outlive the call.
    let status = unsafe {
        sys::nvrtcCompileProgram(program.0, option_ptrs.len() as c_int, option_ptrs.as_ptr())
    };
    if status != sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(Error::Compile {
            family,
            arch,
            nvrtc: format!("{status:?}"),
            log: program_log(&program),
        });
    }
    let ptx = read_output(&program, sys::nvrtcGetPTXSize, sys::nvrtcGetPTX)
        .and_then(|bytes| check(bytes.1, family, arch, "nvrtcGetPTX").map(|()| bytes.0))?;
    let ptx = CStr::from_bytes_until_nul(&ptx)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| String::from_utf8_lossy(&ptx).into_owned());
    let cubin = if arch.is_real() {
        let (bytes, status) = read_output(&program, sys::nvrtcGetCUBINSize, sys::nvrtcGetCUBIN)?;
        check(status, family, arch, "nvrtcGetCUBIN")?;
        Some(bytes)
    } else {
        None
    };
    Ok(Compiled {
        ptx,
        cubin,
        from_cache: false,
        log: program_log(&program),
    })
}

type SizeFn = unsafe fn(sys::nvrtcProgram, *mut usize) -> sys::nvrtcResult;
type ReadFn = unsafe fn(sys::nvrtcProgram, *mut c_char) -> sys::nvrtcResult;

/// Reads one of NVRTC's outputs (PTX, CUBIN, log) through its size/read function pair.
fn read_output(
    program: &Program,
    size_fn: SizeFn,
    read_fn: ReadFn,
) -> Result<(Vec<u8>, sys::nvrtcResult)> {
    let mut size = 0usize;
    // SAFETY: `program` is live and `size` is a valid out-pointer.
    let status = unsafe { size_fn(program.0, &mut size) };
    if status != sys::nvrtcResult::NVRTC_SUCCESS {
        return Ok((Vec::new(), status));
    }
    let mut bytes = vec![0u8; size];
    // SAFETY: `bytes` has exactly the size NVRTC reported.
    let status = unsafe { read_fn(program.0, bytes.as_mut_ptr().cast()) };
    Ok((bytes, status))
}

fn program_log(program: &Program) -> String {
    match read_output(
        program,
        sys::nvrtcGetProgramLogSize,
        sys::nvrtcGetProgramLog,
    ) {
        Ok((bytes, sys::nvrtcResult::NVRTC_SUCCESS)) => String::from_utf8_lossy(&bytes)
            .trim_end_matches('\0')
            .to_string(),
        _ => "(no log)".to_string(),
    }
}
