//! T5's parameters as a struct of named fields mirroring the Hugging Face modules, and one
//! visitor that yields each tensor with its Hugging Face state-dict name. The same struct holds
//! weights, gradients and AdamW moments; allocation, init, checkpoints and zeroing all go
//! through [`T5Params::entries`] / [`T5Params::entries_mut`] (STYLE §8).

use crate::backend::Backend;
use crate::error::Result;
use crate::t5::config::Config;
use crate::tensor::Tensor;

/// `T5Attention`: projections without bias; block 0 of each stack also owns the
/// relative-position bias table.
#[derive(Debug, Clone)]
pub struct T5Attention {
    /// (I, C)
    pub q: Tensor,
    /// (I, C)
    pub k: Tensor,
    /// (I, C)
    pub v: Tensor,
    /// (C, I)
    pub o: Tensor,
    /// (buckets, NH), only in block 0's self-attention.
    pub relative_attention_bias: Option<Tensor>,
}

/// `T5DenseGatedActDense`.
#[derive(Debug, Clone)]
pub struct T5LayerFF {
    /// (F, C), through gelu_new.
    pub wi_0: Tensor,
    /// (F, C), linear gate.
    pub wi_1: Tensor,
    /// (C, F)
    pub wo: Tensor,
}

/// `T5Block`: self-attention, cross-attention (decoder only), feed-forward, each behind an
/// RMSNorm (`layer_norm`, weight (C)).
#[derive(Debug, Clone)]
pub struct T5Block {
    /// `layer.0.SelfAttention`.
    pub self_attention: T5Attention,
    /// `layer.0.layer_norm`.
    pub self_attention_norm: Tensor,
    /// `layer.1.EncDecAttention` and `layer.1.layer_norm` (decoder only).
    pub cross_attention: Option<(T5Attention, Tensor)>,
    /// `layer.{1,2}.DenseReluDense`.
    pub ff: T5LayerFF,
    /// `layer.{1,2}.layer_norm`.
    pub ff_norm: Tensor,
}

/// `T5Stack`: blocks and the final norm.
#[derive(Debug, Clone)]
pub struct T5Stack {
    /// Blocks, in order.
    pub block: Vec<T5Block>,
    /// `final_layer_norm`, (C).
    pub final_layer_norm: Tensor,
}

/// `T5ForConditionalGeneration`'s parameters.
#[derive(Debug, Clone)]
pub struct T5Params {
    /// (V, C), shared by encoder and decoder embeddings.
    pub shared: Tensor,
    /// The encoder.
    pub encoder: T5Stack,
    /// The decoder.
    pub decoder: T5Stack,
    /// (V, C), untied (v1.1).
    pub lm_head: Tensor,
}

/// How a parameter is initialised (Hugging Face `T5PreTrainedModel._init_weights`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Normal with this standard deviation.
    Normal(f32),
    /// All ones (norm weights).
    Ones,
}

/// Lists every parameter of a [`T5Params`] in a fixed order as `(name, tensor, init)`;
/// written once for shared and mutable references (`$($m)?` is empty or `mut`).
macro_rules! walk_params {
    ($params:expr, $c:expr, $lt:lifetime, $($m:ident)?) => {{
        let c: &Config = $c;
        let s = c.initializer_factor;
        let (d, kv, ff, inner) = (c.d_model as f32, c.d_kv as f32, c.d_ff as f32, c.inner_dim() as f32);
        let mut out: Vec<(String, &$lt $($m)? Tensor, Init)> = Vec::new();
        let attention = |p: &str, a: &$lt $($m)? T5Attention, out: &mut Vec<(String, &$lt $($m)? Tensor, Init)>| {
            out.push((format!("{p}.q.weight"), &$($m)? a.q, Init::Normal(s * (d * kv).powf(-0.5))));
            out.push((format!("{p}.k.weight"), &$($m)? a.k, Init::Normal(s * d.powf(-0.5))));
            out.push((format!("{p}.v.weight"), &$($m)? a.v, Init::Normal(s * d.powf(-0.5))));
            out.push((format!("{p}.o.weight"), &$($m)? a.o, Init::Normal(s * inner.powf(-0.5))));
            if let Some(bias) = &$($m)? a.relative_attention_bias {
                out.push((format!("{p}.relative_attention_bias.weight"), bias, Init::Normal(s * d.powf(-0.5))));
            }
        };
        let stack = |p: &str, st: &$lt $($m)? T5Stack, out: &mut Vec<(String, &$lt $($m)? Tensor, Init)>| {
            for (i, b) in (&$($m)? st.block).into_iter().enumerate() {
                let p = format!("{p}.block.{i}");
                attention(&format!("{p}.layer.0.SelfAttention"), &$($m)? b.self_attention, out);
                out.push((format!("{p}.layer.0.layer_norm.weight"), &$($m)? b.self_attention_norm, Init::Ones));
                let ff_layer = match &$($m)? b.cross_attention {
                    Some((att, norm)) => {
                        attention(&format!("{p}.layer.1.EncDecAttention"), att, out);
                        out.push((format!("{p}.layer.1.layer_norm.weight"), norm, Init::Ones));
                        2
                    }
                    None => 1,
                };
                let p = format!("{p}.layer.{ff_layer}");
                out.push((format!("{p}.DenseReluDense.wi_0.weight"), &$($m)? b.ff.wi_0, Init::Normal(s * d.powf(-0.5))));
                out.push((format!("{p}.DenseReluDense.wi_1.weight"), &$($m)? b.ff.wi_1, Init::Normal(s * d.powf(-0.5))));
                out.push((format!("{p}.DenseReluDense.wo.weight"), &$($m)? b.ff.wo, Init::Normal(s * ff.powf(-0.5))));
                out.push((format!("{p}.layer_norm.weight"), &$($m)? b.ff_norm, Init::Ones));
            }
            out.push((format!("{p}.final_layer_norm.weight"), &$($m)? st.final_layer_norm, Init::Ones));
        };
        let T5Params { shared, encoder, decoder, lm_head } = $params;
        out.push(("shared.weight".to_string(), shared, Init::Normal(s)));
        stack("encoder", encoder, &mut out);
        stack("decoder", decoder, &mut out);
        // Hugging Face draws an untied lm_head from N(0, factor²) too, so logits of the
        // unit-RMS final hidden state have std √d_model and a fresh tiny model starts at a loss
        // of ~41 instead of ln V ≈ 6.9. We scale it by d_model^-0.5 (as HF's `qa_outputs` and
        // classification heads are), which starts training near ln V. Loaded weights are
        // unaffected.
        out.push(("lm_head.weight".to_string(), lm_head, Init::Normal(s * d.powf(-0.5))));
        out
    }};
}

impl T5Attention {
    fn zeros(be: &dyn Backend, c: &Config, with_bias: bool) -> T5Attention {
        let (i, d) = (c.inner_dim(), c.d_model);
        T5Attention {
            q: be.zeros(&[i, d]),
            k: be.zeros(&[i, d]),
            v: be.zeros(&[i, d]),
            o: be.zeros(&[d, i]),
            relative_attention_bias: with_bias
                .then(|| be.zeros(&[c.relative_attention_num_buckets, c.num_heads])),
        }
    }
}

impl T5Stack {
    fn zeros(be: &dyn Backend, c: &Config, layers: usize, cross: bool) -> T5Stack {
        let d = c.d_model;
        let block = (0..layers)
            .map(|i| T5Block {
                self_attention: T5Attention::zeros(be, c, i == 0),
                self_attention_norm: be.zeros(&[d]),
                cross_attention: cross.then(|| (T5Attention::zeros(be, c, false), be.zeros(&[d]))),
                ff: T5LayerFF {
                    wi_0: be.zeros(&[c.d_ff, d]),
                    wi_1: be.zeros(&[c.d_ff, d]),
                    wo: be.zeros(&[d, c.d_ff]),
                },
                ff_norm: be.zeros(&[d]),
            })
            .collect();
        T5Stack {
            block,
            final_layer_norm: be.zeros(&[d]),
        }
    }
}

impl T5Params {
    /// Every tensor at zero: the shape of a model, its gradients or its optimizer moments.
    pub fn zeros(be: &dyn Backend, c: &Config) -> T5Params {
        T5Params {
            shared: be.zeros(&[c.vocab_size, c.d_model]),
            encoder: T5Stack::zeros(be, c, c.num_layers, false),
            decoder: T5Stack::zeros(be, c, c.decoder_layers(), true),
            lm_head: be.zeros(&[c.vocab_size, c.d_model]),
        }
    }

    /// Every parameter in a fixed order, with its Hugging Face state-dict name and the
    /// Hugging Face initialisation. Weights, gradients and moments list in the same order, so
    /// the optimizer zips them.
    pub fn entries_mut<'a>(&'a mut self, c: &Config) -> Vec<(String, &'a mut Tensor, Init)> {
        walk_params!(self, c, 'a, mut)
    }

    /// Every parameter, read-only, in the same order as [`T5Params::entries_mut`].
    pub fn entries<'a>(&'a self, c: &Config) -> Vec<(String, &'a Tensor)> {
        let all: Vec<(String, &'a Tensor, Init)> = walk_params!(self, c, 'a,);
        all.into_iter().map(|(n, t, _)| (n, t)).collect()
    }

    /// Names and shapes of every parameter, in order.
    pub fn names_and_shapes(&self, c: &Config) -> Vec<(String, Vec<usize>)> {
        self.entries(c)
            .into_iter()
            .map(|(n, t)| (n, t.shape().to_vec()))
            .collect()
    }

    /// The number of scalar parameters.
    pub fn count(&self, c: &Config) -> usize {
        self.names_and_shapes(c)
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }

    /// Hugging Face's initialisation with a seeded generator (deterministic per seed).
    pub fn init(be: &dyn Backend, c: &Config, seed: u64) -> Result<T5Params> {
        let mut p = T5Params::zeros(be, c);
        let mut rng = Normal::new(seed);
        for (_, t, init) in p.entries_mut(c) {
            let data: Vec<f32> = match init {
                Init::Ones => vec![1.0; t.len()],
                Init::Normal(std) => (0..t.len()).map(|_| std * rng.sample()).collect(),
            };
            *t = be.upload(t.shape(), &data)?;
        }
        Ok(p)
    }
}

/// Standard normal samples by Box–Muller over splitmix64: no RNG crate state to version.
struct Normal {
    state: u64,
    spare: Option<f32>,
}

impl Normal {
    fn new(seed: u64) -> Normal {
        Normal {
            state: seed,
            spare: None,
        }
    }

    fn uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn sample(&mut self) -> f32 {
        if let Some(s) = self.spare.take() {
            return s;
        }
        let (u1, u2) = (self.uniform(), self.uniform());
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (2.0 * std::f64::consts::PI * u2).sin_cos();
        self.spare = Some((r * s) as f32);
        (r * c) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::CpuBackend;

    #[test]
    fn names_follow_hugging_face_and_count_matches_flan_t5_small() {
        let be = CpuBackend::new();
        let c = Config::flan_t5_small();
        let p = T5Params::zeros(&be, &c);
        let names: Vec<String> = p.names_and_shapes(&c).into_iter().map(|(n, _)| n).collect();
        assert!(names.contains(
            &"encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight".into()
        ));
        assert!(names.contains(&"decoder.block.7.layer.2.DenseReluDense.wo.weight".into()));
        assert!(names.contains(&"decoder.block.3.layer.1.EncDecAttention.k.weight".into()));
        assert!(!names.contains(
            &"encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight".into()
        ));
        // google/flan-t5-small has 76,961,152 parameters (shared counted once, lm_head untied).
        assert_eq!(p.count(&c), 76_961_152);
    }
}
