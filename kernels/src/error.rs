//! The crate's error type, classified by who is at fault: the machine (no CUDA, no NVRTC), a
//! kernel that does not compile (a bug here), the driver at run time, or the caller's input.

use crate::arch::Arch;
use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong building or running a kernel.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable GPU: no driver library, no device, a device too old, or the driver's loader
    /// failed. Callers fall back to the CPU backend.
    #[error("CUDA unavailable: {reason}")]
    CudaUnavailable {
        /// What was missing, in words.
        reason: String,
    },

    /// NVRTC (the run-time CUDA compiler) or the CUDA headers it needs cannot be found.
    #[error(
        "NVRTC unavailable: {reason}\nhelp: eval \"$(bash kernels/ci/fetch-nvrtc.sh)\" fetches NVRTC 13.0 and its headers"
    )]
    NvrtcUnavailable {
        /// What was missing, in words.
        reason: String,
    },

    /// A `.cu` family failed to compile: a bug in this crate, please report it with the log.
    #[error("kernel family `{family}` failed to compile for {arch}: {nvrtc}\n{log}")]
    Compile {
        /// The `.cu` file's family name.
        family: &'static str,
        /// The target architecture.
        arch: Arch,
        /// NVRTC's status code, in words.
        nvrtc: String,
        /// NVRTC's compile log.
        log: String,
    },

    /// A driver call failed (module load, allocation, launch, copy).
    #[error("CUDA driver error while {what}: {source}")]
    Driver {
        /// What was being done, naming the module or kernel.
        what: String,
        /// The driver's status.
        source: cudarc::driver::DriverError,
    },

    /// The caller's shapes or values do not fit the op.
    #[error("{op}: {problem}")]
    BadInput {
        /// The op that refused the input.
        op: &'static str,
        /// What is wrong with which argument.
        problem: String,
    },

    /// The on-disk PTX cache could not be read or written.
    #[error("kernel cache {}: {source}", path.display())]
    Cache {
        /// The file or folder involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Builds an [`Error::BadInput`] from an op name and a `format!` message.
macro_rules! bad_input {
    ($op:expr, $($fmt:tt)+) => {
        $crate::error::Error::BadInput { op: $op, problem: format!($($fmt)+) }
    };
}
pub(crate) use bad_input;

/// Adds "while …" context to a driver result.
pub(crate) trait DriverContext<T> {
    /// Wraps a [`cudarc::driver::DriverError`] into [`Error::Driver`].
    fn while_(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> DriverContext<T> for std::result::Result<T, cudarc::driver::DriverError> {
    fn while_(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Driver {
            what: what(),
            source,
        })
    }
}

/// The message of a caught panic (the loaders panic when a library is missing).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "the loader panicked".to_string()
    }
}
