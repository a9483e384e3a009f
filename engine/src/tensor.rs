//! Tensors are plain: a shape and a storage on a device. Ops never live here; they are methods
//! of a [`crate::backend::Backend`], which reads and writes the storage of its own device.
//!
//! Layout is always dense row-major over `shape`; views into a tensor (a head, a batch item)
//! are described to ops by [`crate::backend::MatView`] offsets and strides, never by copies.

/// The memory behind a tensor. One variant per backend; the CUDA backend adds its own.
#[derive(Debug, Clone, PartialEq)]
pub enum Storage {
    /// Host memory, f32.
    Cpu(Vec<f32>),
}

/// A dense row-major f32 tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    storage: Storage,
}

impl Tensor {
    /// A host tensor from data; panics if `data.len()` is not the product of `shape`, an
    /// invariant every caller establishes.
    pub fn from_vec(shape: &[usize], data: Vec<f32>) -> Tensor {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "invariant: tensor data length matches shape {shape:?}"
        );
        Tensor {
            shape: shape.to_vec(),
            storage: Storage::Cpu(data),
        }
    }

    /// A host tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor::from_vec(shape, vec![0.0; shape.iter().product()])
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The storage, for backends.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The storage, mutably, for backends.
    pub fn storage_mut(&mut self) -> &mut Storage {
        &mut self.storage
    }

    /// Reinterprets the same elements under another shape of equal size.
    pub fn reshape(mut self, shape: &[usize]) -> Tensor {
        assert_eq!(
            shape.iter().product::<usize>(),
            self.len(),
            "invariant: reshape keeps the element count"
        );
        self.shape = shape.to_vec();
        self
    }
}
