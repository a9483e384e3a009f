//! The engine's error type, classified by who is at fault (see STYLE §5):
//! the user's input or configuration, the runtime (I/O, catalog), a device that is not
//! available, or an internal bug (which asks to be reported).

use std::path::PathBuf;

/// Everything the engine library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A user-supplied input (config, checkpoint, data, CLI value) is unusable.
    #[error("{what}: {problem}")]
    InvalidInput {
        /// The input, named so the user can find it (a file, a field, a flag).
        what: String,
        /// What is wrong with it, with a `help:` line when the fix is known.
        problem: String,
    },
    /// A weight tensor is missing from a checkpoint or has the wrong shape.
    #[error("weights {file}: tensor `{name}` {problem}")]
    Weights {
        /// The safetensors file.
        file: PathBuf,
        /// The Hugging Face tensor name.
        name: String,
        /// "is missing", "has shape [..], expected [..]", ...
        problem: String,
    },
    /// Training produced a non-finite value and stopped.
    #[error(
        "non-finite {what} at step {step}: {value}\nhelp: lower the learning rate or enable clipping; the last good checkpoint is kept"
    )]
    NonFinite {
        /// Which quantity (loss, gradient norm).
        what: &'static str,
        /// The optimizer step.
        step: u64,
        /// The offending value.
        value: f64,
    },
    /// A device was asked for that this build or machine cannot provide.
    #[error("device {device} is not available: {reason}")]
    DeviceUnavailable {
        /// The requested device.
        device: String,
        /// Why not.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The catalog failed (reading splits, writing metrics).
    #[error("catalog: {0}")]
    Catalog(String),
    /// The tokenizer library failed.
    #[error("tokenizer {what}: {message}")]
    Tokenizer {
        /// The tokenizer file or operation.
        what: String,
        /// The library's message.
        message: String,
    },
    /// An invariant of the engine broke; this is a bug.
    #[error("internal error: {0}\nhelp: this is a bug in negopt-engine, please report it")]
    Internal(String),
}

/// Result alias for the engine library.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

impl EngineError {
    /// An unusable user input: `what` names it, `problem` says what is wrong.
    pub fn input(what: impl Into<String>, problem: impl Into<String>) -> Self {
        EngineError::InvalidInput {
            what: what.into(),
            problem: problem.into(),
        }
    }

    /// An I/O failure on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EngineError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Builds an [`EngineError::Internal`] with `format!` arguments.
#[macro_export]
macro_rules! internal_err {
    ($($arg:tt)*) => { $crate::error::EngineError::Internal(format!($($arg)*)) };
}
