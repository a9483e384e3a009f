//! Loading and saving T5 weights as `model.safetensors` with Hugging Face names, so public
//! flan-t5 checkpoints load and `transformers` loads ours. `encoder.embed_tokens.weight` and
//! `decoder.embed_tokens.weight` are aliases of `shared.weight` in transformers; they are
//! accepted on load and not written.

use std::collections::HashMap;
use std::path::Path;

use crate::backend::Backend;
use crate::error::Result;
use crate::safetensors_file::{TensorFile, write};
use crate::t5::config::Config;
use crate::t5::params::T5Params;

/// Names transformers may store that alias `shared.weight`.
const TIED_ALIASES: [&str; 2] = ["encoder.embed_tokens.weight", "decoder.embed_tokens.weight"];

/// Reads every parameter of `config` from a safetensors file: a missing tensor or a wrong
/// shape is an error naming the tensor; tensors the model does not use are logged.
pub fn load_params(be: &dyn Backend, config: &Config, path: &Path) -> Result<T5Params> {
    let mut file = TensorFile::read(path)?;
    let mut params = T5Params::zeros(be, config);
    for (name, t, _) in params.entries_mut(config) {
        let data = file.take(&name, t.shape())?;
        *t = be.upload(t.shape(), &data)?;
    }
    let extra: Vec<&str> = file.names().filter(|n| !TIED_ALIASES.contains(n)).collect();
    if !extra.is_empty() {
        tracing::warn!(file = %path.display(), tensors = ?extra, "unused tensors in checkpoint");
    }
    Ok(params)
}

/// Writes every parameter with its Hugging Face name (`format: pt` metadata as transformers
/// expects).
pub fn save_params(
    be: &dyn Backend,
    config: &Config,
    params: &T5Params,
    path: &Path,
) -> Result<()> {
    let tensors = params
        .entries(config)
        .into_iter()
        .map(|(name, t)| Ok((name, t.shape().to_vec(), be.download(t)?)))
        .collect::<Result<Vec<_>>>()?;
    write(
        path,
        &tensors,
        HashMap::from([("format".to_string(), "pt".to_string())]),
    )
}
