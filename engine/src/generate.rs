//! Batched decoding with a decoder KV cache: greedy, beam search, and top-k / top-p sampling
//! with temperature (`engine generate`).
//!
//! ```text
//! prompts ─► encoder (once) ─► per block: cross K,V (once)
//! step t: token ─► embed ─► per block: self-attn (append k,v to cache row t; attend 0..=t)
//!         ─► cross-attn ─► FF ─► final norm ─► lm_head ─► logits (N, V) ─► strategy
//! ```
//! Cache rows are written with `embedding_backward` into a zeroed cache (adding into zero is
//! writing) and beams are reordered with `embedding_forward` (a row gather), so decoding needs
//! no op beyond the training ones.

use crate::backend::{Backend, Masking};
use crate::error::{EngineError, Result};
use crate::t5::attention::{AttentionDims, attend};
use crate::t5::dropout_plan::DropoutPlan;
use crate::t5::feed_forward::feed_forward_forward;
use crate::t5::linear::linear;
use crate::t5::model::T5Model;
use crate::t5::position_bias::bucket_ids;
use crate::t5::stack::{StackInput, stack_forward};
use crate::tensor::Tensor;
use crate::tokenizer::Tokenizer;

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Strategy {
    /// The most likely token.
    Greedy,
    /// Beam search with this many beams (length-normalised scores, as transformers'
    /// `length_penalty = 1`).
    Beam {
        /// Beams per prompt.
        width: usize,
    },
    /// Sampling from the temperature-scaled distribution, restricted to the `top_k` most
    /// likely tokens (0: all) and the smallest set with mass `top_p`.
    Sample {
        /// Softmax temperature (> 0).
        temperature: f32,
        /// Keep the k most likely tokens; 0 keeps all.
        top_k: usize,
        /// Nucleus mass in (0, 1].
        top_p: f32,
        /// RNG seed.
        seed: u64,
    },
}

/// Per-block decoder caches: self-attention K, V (N, Tmax, I) and cross K, V (N·S, I).
struct Cache {
    k: Vec<Tensor>,
    v: Vec<Tensor>,
    cross_k: Vec<Tensor>,
    cross_v: Vec<Tensor>,
    /// (N, S) encoder key mask.
    mask: Tensor,
}

/// The decoder state of a batch of sequences being generated.
struct Decoder<'a> {
    be: &'a dyn Backend,
    model: &'a T5Model,
    n: usize,
    s: usize,
    tmax: usize,
    cache: Cache,
}

impl<'a> Decoder<'a> {
    /// Encodes `src` (N rows of length S, padded) and prepares caches for `tmax` steps.
    fn new(
        be: &'a dyn Backend,
        model: &'a T5Model,
        ids: &[u32],
        mask: &[f32],
        n: usize,
        s: usize,
        tmax: usize,
    ) -> Result<Decoder<'a>> {
        let c = &model.config;
        let mask_t = be.upload(&[n, s], mask)?;
        let input = StackInput {
            ids,
            b: n,
            t: s,
            masking: Masking::Bidirectional,
            key_mask: Some(&mask_t),
            cross: None,
        };
        let enc = stack_forward(
            be,
            &model.params.encoder,
            &model.params.shared,
            c,
            &input,
            &DropoutPlan::off(),
        )?;
        let mut cache = Cache {
            k: vec![],
            v: vec![],
            cross_k: vec![],
            cross_v: vec![],
            mask: mask_t,
        };
        for blk in &model.params.decoder.block {
            let (att, _) = blk
                .cross_attention
                .as_ref()
                .ok_or_else(|| crate::internal_err!("decoder block without cross-attention"))?;
            cache.cross_k.push(linear(be, &enc.out, &att.k)?);
            cache.cross_v.push(linear(be, &enc.out, &att.v)?);
            cache.k.push(be.zeros(&[n * tmax, c.inner_dim()]));
            cache.v.push(be.zeros(&[n * tmax, c.inner_dim()]));
        }
        Ok(Decoder {
            be,
            model,
            n,
            s,
            tmax,
            cache,
        })
    }

    /// Logits (N·V, host) for `tokens` (N) at position `t`.
    fn step(&mut self, tokens: &[u32], t: usize) -> Result<Vec<f32>> {
        let (be, c, p) = (self.be, &self.model.config, &self.model.params);
        let (n, eps, off) = (self.n, c.layer_norm_epsilon, DropoutPlan::off());
        let mut x = be.zeros(&[n, c.d_model]);
        be.embedding_forward(&mut x, &p.shared, tokens)?;
        let table = p.decoder.block[0]
            .self_attention
            .relative_attention_bias
            .as_ref()
            .ok_or_else(|| {
                crate::internal_err!("decoder block 0 lacks its relative_attention_bias")
            })?;
        let mut bias = be.zeros(&[t + 1, c.num_heads]);
        be.embedding_forward(
            &mut bias,
            table,
            &bucket_ids(
                1,
                t + 1,
                t,
                Masking::Causal,
                c.relative_attention_num_buckets,
                c.relative_attention_max_distance,
            ),
        )?;
        let rows: Vec<u32> = (0..n).map(|i| (i * self.tmax + t) as u32).collect();
        let norm = |x: &Tensor, w: &Tensor| -> Result<Tensor> {
            let (mut out, mut rstd) = (be.zeros(x.shape()), be.zeros(&[x.shape()[0]]));
            be.rmsnorm_forward(&mut out, &mut rstd, x, w, eps)?;
            Ok(out)
        };
        let dims = |tk: usize, kv_rows: usize| AttentionDims {
            b: n,
            tq: 1,
            tk,
            nh: c.num_heads,
            hs: c.d_kv,
            kv_rows,
        };
        for (l, blk) in p.decoder.block.iter().enumerate() {
            let h = norm(&x, &blk.self_attention_norm)?;
            let q = linear(be, &h, &blk.self_attention.q)?;
            be.embedding_backward(
                &mut self.cache.k[l],
                &linear(be, &h, &blk.self_attention.k)?,
                &rows,
            )?;
            be.embedding_backward(
                &mut self.cache.v[l],
                &linear(be, &h, &blk.self_attention.v)?,
                &rows,
            )?;
            let (_, _, ctx, _) = attend(
                be,
                &q,
                &self.cache.k[l],
                &self.cache.v[l],
                dims(t + 1, self.tmax),
                Some(&bias),
                None,
                Masking::Causal,
                &off,
            )?;
            be.add_assign(&mut x, &linear(be, &ctx, &blk.self_attention.o)?)?;
            let (att, att_norm) = blk
                .cross_attention
                .as_ref()
                .ok_or_else(|| crate::internal_err!("decoder block without cross-attention"))?;
            let h = norm(&x, att_norm)?;
            let q = linear(be, &h, &att.q)?;
            let (_, _, ctx, _) = attend(
                be,
                &q,
                &self.cache.cross_k[l],
                &self.cache.cross_v[l],
                dims(self.s, self.s),
                None,
                Some(&self.cache.mask),
                Masking::Bidirectional,
                &off,
            )?;
            be.add_assign(&mut x, &linear(be, &ctx, &att.o)?)?;
            let h = norm(&x, &blk.ff_norm)?;
            let (y, _) = feed_forward_forward(be, &blk.ff, &h, &off)?;
            be.add_assign(&mut x, &y)?;
        }
        let h = norm(&x, &p.decoder.final_layer_norm)?;
        be.download(&linear(be, &h, &p.lm_head)?)
    }

    /// Reorders every cache so row i becomes old row `parents[i]` (beam search).
    fn reorder(&mut self, parents: &[u32]) -> Result<()> {
        let be = self.be;
        let gather = |t: &Tensor, rows: usize| -> Result<Tensor> {
            let width = t.len() / rows;
            let table = t.clone().reshape(&[rows, width]);
            let mut out = be.zeros(&[rows, width]);
            be.embedding_forward(&mut out, &table, parents)?;
            Ok(out.reshape(t.shape()))
        };
        for l in 0..self.cache.k.len() {
            self.cache.k[l] = gather(&self.cache.k[l], self.n)?;
            self.cache.v[l] = gather(&self.cache.v[l], self.n)?;
        }
        Ok(())
    }
}

fn log_softmax(x: &[f32]) -> Vec<f32> {
    let max = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let lse = max + x.iter().map(|&v| (v - max).exp()).sum::<f32>().ln();
    x.iter().map(|&v| v - lse).collect()
}

fn argmax(x: &[f32]) -> u32 {
    x.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0 as u32
}

/// splitmix64 uniform in [0, 1).
fn uniform(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

fn sample(logits: &[f32], temperature: f32, top_k: usize, top_p: f32, state: &mut u64) -> u32 {
    let scaled: Vec<f32> = logits.iter().map(|&l| l / temperature).collect();
    let lp = log_softmax(&scaled);
    let mut order: Vec<usize> = (0..lp.len()).collect();
    order.sort_by(|&a, &b| lp[b].total_cmp(&lp[a]));
    let k = if top_k == 0 {
        order.len()
    } else {
        top_k.min(order.len())
    };
    let mut keep = Vec::new();
    let mut mass = 0.0f32;
    for &i in &order[..k] {
        keep.push(i);
        mass += lp[i].exp();
        if mass >= top_p {
            break;
        }
    }
    let total: f32 = keep.iter().map(|&i| lp[i].exp()).sum();
    let mut u = uniform(state) as f32 * total;
    for &i in &keep {
        u -= lp[i].exp();
        if u <= 0.0 {
            return i as u32;
        }
    }
    *keep.last().unwrap_or(&0) as u32
}

/// Generates one negative prompt per prompt, at most `max_len` tokens each.
#[allow(clippy::too_many_arguments)]
pub fn generate(
    be: &dyn Backend,
    model: &T5Model,
    tok: &Tokenizer,
    prompts: &[String],
    strategy: Strategy,
    max_source: usize,
    max_len: usize,
) -> Result<Vec<String>> {
    let src: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| tok.encode(p, max_source))
        .collect::<Result<_>>()?;
    generate_ids(be, model, &src, strategy, max_len)?
        .iter()
        .map(|ids| tok.decode(ids))
        .collect()
}

/// Generates target ids (without `</s>`) for each source id sequence.
pub fn generate_ids(
    be: &dyn Backend,
    model: &T5Model,
    src: &[Vec<u32>],
    strategy: Strategy,
    max_len: usize,
) -> Result<Vec<Vec<u32>>> {
    if src.is_empty() || max_len == 0 {
        return Ok(vec![Vec::new(); src.len()]);
    }
    let width = match strategy {
        Strategy::Beam { width: 0 } => {
            return Err(EngineError::input("--beams", "must be at least 1"));
        }
        Strategy::Beam { width } => width,
        Strategy::Sample {
            temperature, top_p, ..
        } if temperature <= 0.0 || !(top_p > 0.0 && top_p <= 1.0) => {
            return Err(EngineError::input(
                "sampling",
                "temperature must be > 0 and top-p within (0, 1]",
            ));
        }
        _ => 1,
    };
    let pad = model.config.pad_token_id;
    let s = src.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let (mut ids, mut mask) = (Vec::new(), Vec::new());
    for row in src {
        for _ in 0..width {
            ids.extend(
                row.iter()
                    .copied()
                    .chain(std::iter::repeat_n(pad, s - row.len())),
            );
            mask.extend((0..s).map(|j| if j < row.len() { 1.0 } else { 0.0 }));
        }
    }
    let n = src.len() * width;
    let mut dec = Decoder::new(be, model, &ids, &mask, n, s, max_len)?;
    let v = model.config.vocab_size;
    let eos = model.config.eos_token_id;
    let mut tokens = vec![model.config.decoder_start_token_id; n];
    if let Strategy::Beam { width } = strategy {
        return beam_search(&mut dec, src.len(), width, v, eos, max_len, &mut tokens);
    }
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut done = vec![false; n];
    let mut rng = if let Strategy::Sample { seed, .. } = strategy {
        seed
    } else {
        0
    };
    for t in 0..max_len {
        let logits = dec.step(&tokens, t)?;
        for i in 0..n {
            let row = &logits[i * v..(i + 1) * v];
            let next = match strategy {
                Strategy::Sample {
                    temperature,
                    top_k,
                    top_p,
                    ..
                } => sample(row, temperature, top_k, top_p, &mut rng),
                _ => argmax(row),
            };
            if !done[i] {
                if next == eos {
                    done[i] = true;
                } else {
                    out[i].push(next);
                }
            }
            tokens[i] = next;
        }
        if done.iter().all(|&d| d) {
            break;
        }
    }
    Ok(out)
}

/// Beam search over `b` prompts × `w` beams; returns the best sequence per prompt.
fn beam_search(
    dec: &mut Decoder<'_>,
    b: usize,
    w: usize,
    v: usize,
    eos: u32,
    max_len: usize,
    tokens: &mut [u32],
) -> Result<Vec<Vec<u32>>> {
    // Only beam 0 of each prompt is live at first: the others start at −∞.
    let mut scores: Vec<f32> = (0..b * w)
        .map(|i| if i % w == 0 { 0.0 } else { f32::NEG_INFINITY })
        .collect();
    let mut seqs: Vec<Vec<u32>> = vec![Vec::new(); b * w];
    let mut finished: Vec<Vec<(f32, Vec<u32>)>> = vec![Vec::new(); b];
    for t in 0..max_len {
        let logits = dec.step(tokens, t)?;
        let mut parents = vec![0u32; b * w];
        let (mut new_scores, mut new_seqs) = (scores.clone(), seqs.clone());
        for item in 0..b {
            let mut cands: Vec<(f32, usize, u32)> = Vec::new();
            for beam in 0..w {
                let i = item * w + beam;
                if scores[i] == f32::NEG_INFINITY {
                    continue;
                }
                let lp = log_softmax(&logits[i * v..(i + 1) * v]);
                let mut top: Vec<u32> = (0..v as u32).collect();
                top.sort_by(|&a, &c| lp[c as usize].total_cmp(&lp[a as usize]));
                for &tk in top.iter().take(2 * w) {
                    cands.push((scores[i] + lp[tk as usize], i, tk));
                }
            }
            cands.sort_by(|a, c| c.0.total_cmp(&a.0));
            let mut slot = 0;
            for (score, parent, tk) in cands {
                if slot == w {
                    break;
                }
                if tk == eos {
                    let len = seqs[parent].len() + 1;
                    finished[item].push((score / len as f32, seqs[parent].clone()));
                    continue;
                }
                let i = item * w + slot;
                parents[i] = parent as u32;
                new_scores[i] = score;
                new_seqs[i] = seqs[parent].iter().copied().chain([tk]).collect();
                tokens[i] = tk;
                slot += 1;
            }
            for s in slot..w {
                new_scores[item * w + s] = f32::NEG_INFINITY;
            }
        }
        scores = new_scores;
        seqs = new_seqs;
        dec.reorder(&parents)?;
        if finished.iter().all(|f| f.len() >= w) {
            break;
        }
    }
    Ok((0..b)
        .map(|item| {
            let alive = (0..w)
                .map(|k| item * w + k)
                .filter(|&i| scores[i].is_finite())
                .map(|i| (scores[i] / seqs[i].len().max(1) as f32, seqs[i].clone()));
            finished[item]
                .iter()
                .cloned()
                .chain(alive)
                .max_by(|a, c| a.0.total_cmp(&c.0))
                .map(|x| x.1)
                .unwrap_or_default()
        })
        .collect())
}
