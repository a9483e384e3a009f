//! Named f32 tensors in safetensors files: model weights with Hugging Face names, optimizer
//! moments, golden test data. Reading accepts F32, F16 and BF16 (public checkpoints ship all
//! three) and converts to f32; writing is always F32.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::error::{EngineError, Result};

/// The tensors of one safetensors file, in f32.
#[derive(Debug)]
pub struct TensorFile {
    path: PathBuf,
    tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    metadata: HashMap<String, String>,
}

impl TensorFile {
    /// Reads every tensor of `path`.
    pub fn read(path: &Path) -> Result<TensorFile> {
        let bytes = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
        let not_safetensors = |e: safetensors::SafeTensorError| {
            EngineError::input(
                path.display().to_string(),
                format!("not a safetensors file: {e}"),
            )
        };
        let st = SafeTensors::deserialize(&bytes).map_err(not_safetensors)?;
        let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(not_safetensors)?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            let data = to_f32(&view).ok_or_else(|| EngineError::Weights {
                file: path.to_path_buf(),
                name: name.clone(),
                problem: format!(
                    "has dtype {:?}\nhelp: convert it to F32, F16 or BF16",
                    view.dtype()
                ),
            })?;
            tensors.insert(name, (view.shape().to_vec(), data));
        }
        Ok(TensorFile {
            path: path.to_path_buf(),
            tensors,
            metadata: meta.metadata().clone().unwrap_or_default(),
        })
    }

    /// The file's `__metadata__` strings.
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// Names of the tensors still in the file (not yet taken).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Removes and returns tensor `name`, checking its shape.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let err = |problem: String| EngineError::Weights {
            file: self.path.clone(),
            name: name.to_string(),
            problem,
        };
        match self.tensors.remove(name) {
            None => Err(err("is missing".into())),
            Some((s, _)) if s != shape => Err(err(format!("has shape {s:?}, expected {shape:?}"))),
            Some((_, data)) => Ok(data),
        }
    }
}

fn to_f32(view: &TensorView<'_>) -> Option<Vec<f32>> {
    let d = view.data();
    Some(match view.dtype() {
        Dtype::F32 => d
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => d
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => d
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}

/// Writes `tensors` (name, shape, data) as F32 with `metadata`, atomically enough for a
/// checkpoint directory that is itself renamed into place.
pub fn write(
    path: &Path,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    metadata: HashMap<String, String>,
) -> Result<()> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, d)| d.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            Ok((
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), b)
                    .map_err(|e| crate::internal_err!("tensor {name}: {e}"))?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::tensor::serialize_to_file(views, Some(metadata), path)
        .map_err(|e| EngineError::io(path, std::io::Error::other(e.to_string())))
}
