//! Target architectures. Kernels are compiled for an explicit architecture (NVRTC has no
//! sensible default): `compute_80` PTX, which the driver JIT-compiles for any sm_80+ GPU
//! (A100, L40, and newer), and `sm_90a` SASS for Hopper (H100/H200), which also unlocks the
//! arch-specific instructions (`wgmma`, TMA) that plain `sm_90` forbids.

use std::fmt;

/// An NVRTC compilation target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// Virtual `compute_80`: PTX for every GPU from Ampere on.
    Compute80,
    /// Real `sm_90a`: Hopper machine code (H100, H200).
    Sm90a,
}

impl Arch {
    /// Every target CI compiles for.
    pub const ALL: [Arch; 2] = [Arch::Compute80, Arch::Sm90a];

    /// The `--gpu-architecture` value.
    pub fn nvrtc_name(self) -> &'static str {
        match self {
            Arch::Compute80 => "compute_80",
            Arch::Sm90a => "sm_90a",
        }
    }

    /// Whether NVRTC produces machine code (CUBIN) for this target, not just PTX.
    pub fn is_real(self) -> bool {
        matches!(self, Arch::Sm90a)
    }

    /// The best target for a device of compute capability `(major, minor)`, or `None` when the
    /// device predates bf16 tensor cores (sm_80).
    pub fn for_capability(major: i32, minor: i32) -> Option<Arch> {
        match (major, minor) {
            (9, 0) => Some(Arch::Sm90a),
            (m, _) if m >= 8 => Some(Arch::Compute80),
            _ => None,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.nvrtc_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_picks_target() {
        assert_eq!(Arch::for_capability(9, 0), Some(Arch::Sm90a));
        assert_eq!(Arch::for_capability(8, 0), Some(Arch::Compute80));
        assert_eq!(Arch::for_capability(8, 9), Some(Arch::Compute80));
        assert_eq!(Arch::for_capability(10, 0), Some(Arch::Compute80));
        assert_eq!(Arch::for_capability(7, 5), None);
    }
}
