//! Which dropout applies in a forward pass, and the seed of each dropout site.
//!
//! Seeds are `hash(step seed, site counter)`: sites are numbered in forward order, so the
//! backward (which stores each site's seed) and a resumed run see the same masks.

use std::cell::Cell;

use crate::backend::Backend;
use crate::error::Result;
use crate::tensor::Tensor;

/// Dropout for one forward pass: off (eval, generation) or on with a seed.
#[derive(Debug)]
pub struct DropoutPlan {
    p: f32,
    seed: u64,
    site: Cell<u64>,
}

impl DropoutPlan {
    /// No dropout: evaluation and generation.
    pub fn off() -> DropoutPlan {
        DropoutPlan {
            p: 0.0,
            seed: 0,
            site: Cell::new(0),
        }
    }

    /// Dropout with probability `p`, masks derived from `seed`.
    pub fn train(p: f32, seed: u64) -> DropoutPlan {
        DropoutPlan {
            p,
            seed,
            site: Cell::new(0),
        }
    }

    /// Whether any element is dropped.
    pub fn active(&self) -> bool {
        self.p > 0.0
    }

    /// Applies dropout to `t` at the next site and returns that site's seed (for the backward).
    pub fn apply(&self, be: &dyn Backend, t: &mut Tensor) -> Result<u64> {
        let site = self.site.get();
        self.site.set(site + 1);
        let seed = self.seed ^ site.wrapping_mul(0xD6E8_FEB8_6659_FD93).rotate_left(17);
        if self.active() {
            be.dropout(t, self.p, seed)?;
        }
        Ok(seed)
    }

    /// The backward of [`DropoutPlan::apply`]: the same mask on the gradient.
    pub fn backward(&self, be: &dyn Backend, grad: &mut Tensor, seed: u64) -> Result<()> {
        if self.active() {
            be.dropout(grad, self.p, seed)?;
        }
        Ok(())
    }
}
