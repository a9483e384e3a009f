//! Kernel families: one `.cu` file each, compiled as one NVRTC program and loaded as one
//! module. The sources are embedded in the binary, so a release build needs no source tree.
//! Entry-point names follow `<op>_<dir>_<variant>_<dtype>` and are built by [`kernel_name`];
//! nobody types them by hand.

use std::fmt;

/// The header every family includes as `"common.cuh"`.
pub const COMMON_HEADER: &str = include_str!("../cu/common.cuh");

/// One `.cu` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `gemm.cu`: tensor-core GEMM.
    Gemm,
    /// `attention.cu`: fused attention forward and backward.
    Attention,
    /// `attention_softmax.cu`: the unfused attention's bias + mask + softmax.
    AttentionSoftmax,
    /// `rmsnorm.cu`: RMSNorm fused with the residual add.
    Rmsnorm,
    /// `gated_gelu.cu`: T5 gated-GELU.
    GatedGelu,
    /// `embedding.cu`: token embedding.
    Embedding,
    /// `cross_entropy.cu`: fused softmax + cross-entropy.
    CrossEntropy,
    /// `adamw.cu`: AdamW step.
    Adamw,
    /// `global_norm.cu`: gradient sum of squares.
    GlobalNorm,
    /// `cast.cu`: fp32 ⇄ bf16.
    Cast,
    /// `dropout.cu`: inverted dropout with a counter-based mask.
    Dropout,
    /// `elementwise.cu`: `a = alpha·a + b` (residual add, gradient scaling).
    Elementwise,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 12] = [
        Family::Gemm,
        Family::Attention,
        Family::AttentionSoftmax,
        Family::Rmsnorm,
        Family::GatedGelu,
        Family::Embedding,
        Family::CrossEntropy,
        Family::Adamw,
        Family::GlobalNorm,
        Family::Cast,
        Family::Dropout,
        Family::Elementwise,
    ];

    /// The file stem, also the NVRTC program name.
    pub fn name(self) -> &'static str {
        match self {
            Family::Gemm => "gemm",
            Family::Attention => "attention",
            Family::AttentionSoftmax => "attention_softmax",
            Family::Rmsnorm => "rmsnorm",
            Family::GatedGelu => "gated_gelu",
            Family::Embedding => "embedding",
            Family::CrossEntropy => "cross_entropy",
            Family::Adamw => "adamw",
            Family::GlobalNorm => "global_norm",
            Family::Cast => "cast",
            Family::Dropout => "dropout",
            Family::Elementwise => "elementwise",
        }
    }

    /// The CUDA C source.
    pub fn source(self) -> &'static str {
        match self {
            Family::Gemm => include_str!("../cu/gemm.cu"),
            Family::Attention => include_str!("../cu/attention.cu"),
            Family::AttentionSoftmax => include_str!("../cu/attention_softmax.cu"),
            Family::Rmsnorm => include_str!("../cu/rmsnorm.cu"),
            Family::GatedGelu => include_str!("../cu/gated_gelu.cu"),
            Family::Embedding => include_str!("../cu/embedding.cu"),
            Family::CrossEntropy => include_str!("../cu/cross_entropy.cu"),
            Family::Adamw => include_str!("../cu/adamw.cu"),
            Family::GlobalNorm => include_str!("../cu/global_norm.cu"),
            Family::Cast => include_str!("../cu/cast.cu"),
            Family::Dropout => include_str!("../cu/dropout.cu"),
            Family::Elementwise => include_str!("../cu/elementwise.cu"),
        }
    }

    /// Every entry point the launchers use from this family.
    pub fn entry_points(self) -> Vec<String> {
        use Dir::{Backward, Forward};
        use Dtype::{Bf16, F32};
        let names: Vec<(&str, Dir, u8, Dtype)> = match self {
            Family::Gemm => {
                let mut v = Vec::new();
                for op in ["gemm_nt", "gemm_nn", "gemm_tn"] {
                    v.push((op, Forward, 1, Bf16));
                    v.push((op, Forward, 1, F32));
                }
                v.push(("gemm_nt", Forward, 2, Bf16));
                v.push(("gemm_nt", Forward, 2, F32));
                v.push(("gemm_strided_bf16", Forward, 1, Bf16));
                v.push(("gemm_strided_f32", Forward, 1, F32));
                v
            }
            Family::AttentionSoftmax => vec![
                ("attention_softmax", Forward, 1, Bf16),
                ("attention_softmax", Forward, 1, F32),
                ("attention_softmax", Backward, 1, Bf16),
                ("attention_softmax", Backward, 1, F32),
            ],
            Family::Attention => vec![
                ("attention", Forward, 1, Bf16),
                ("attention_delta", Backward, 1, Bf16),
                ("attention_dkv", Backward, 1, Bf16),
                ("attention_dq", Backward, 1, Bf16),
            ],
            Family::Rmsnorm => vec![
                ("rmsnorm", Forward, 1, Bf16),
                ("rmsnorm", Backward, 1, Bf16),
            ],
            Family::GatedGelu => vec![
                ("gated_gelu", Forward, 1, Bf16),
                ("gated_gelu", Backward, 1, Bf16),
            ],
            Family::Embedding => vec![
                ("embedding", Forward, 1, Bf16),
                ("embedding", Backward, 1, Bf16),
            ],
            Family::CrossEntropy => vec![("cross_entropy", Forward, 1, Bf16)],
            Family::Adamw => vec![("adamw", Forward, 1, Bf16)],
            Family::GlobalNorm => vec![("global_norm", Forward, 1, F32)],
            Family::Cast => vec![
                ("cast_f32", Forward, 1, Bf16),
                ("cast_bf16", Forward, 1, F32),
            ],
            Family::Dropout => vec![("dropout", Forward, 1, F32), ("dropout", Forward, 1, Bf16)],
            Family::Elementwise => vec![
                ("scale_add", Forward, 1, F32),
                ("scale_add", Forward, 1, Bf16),
            ],
        };
        names
            .into_iter()
            .map(|(op, dir, variant, dtype)| kernel_name(op, dir, variant, dtype))
            .collect()
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// Direction of an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// The forward pass (also used for optimizer steps and reductions).
    Forward,
    /// The backward pass.
    Backward,
}

/// The dtype in a kernel's name (the output's, for conversions and GEMM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// bfloat16.
    Bf16,
    /// float32.
    F32,
}

/// `<op>_<dir>_v<variant>_<dtype>`, the one way entry-point names are spelled.
pub fn kernel_name(op: &str, dir: Dir, variant: u8, dtype: Dtype) -> String {
    let dir = match dir {
        Dir::Forward => "forward",
        Dir::Backward => "backward",
    };
    let dtype = match dtype {
        Dtype::Bf16 => "bf16",
        Dtype::F32 => "f32",
    };
    format!("{op}_{dir}_v{variant}_{dtype}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name a launcher asks for appears as an `extern "C"` definition in its source, so a
    /// renamed kernel fails here even on a machine without NVRTC.
    #[test]
    fn entry_points_are_defined_in_sources() {
        for family in Family::ALL {
            let source = family.source();
            for name in family.entry_points() {
                let defined = source.contains(&format!(" {name}("))
                    || source.contains(&format!("\n    {name}("))
                    || source.contains(&format!("({name},"));
                assert!(defined, "{name} is not defined in {family}.cu");
            }
        }
    }

    #[test]
    fn names_follow_the_convention() {
        assert_eq!(
            kernel_name("rmsnorm", Dir::Backward, 1, Dtype::Bf16),
            "rmsnorm_backward_v1_bf16"
        );
    }
}
