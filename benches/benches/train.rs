//! Training-step throughput of the engine's CPU backend: one full SFT step (forward, backward,
//! AdamW) on random weights and tokens, for the tiny built-in config and the flan-t5-small
//! shape, batch 16, source 64 / target 64 tokens. Throughput counts source + target tokens,
//! as the PyTorch peer (`engine/scripts/bench_train_torch.py`, same shapes and threads) does.
//! Peak RSS (VmHWM) is printed after each config.
//!
//!     RAYON_NUM_THREADS=2 cargo bench -p negopt-benches --bench train
//!     /tmp/hfvenv/bin/python engine/scripts/bench_train_torch.py --threads 2

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use negopt_benches::peak_rss_mib;
use negopt_engine::device::Device;
use negopt_engine::optim::{AdamW, AdamWConfig, grad_norm};
use negopt_engine::t5::config::Config;
use negopt_engine::t5::dropout_plan::DropoutPlan;
use negopt_engine::t5::model::{Seq2SeqBatch, T5Model};
use negopt_engine::t5::params::T5Params;

const B: usize = 16;
const S: usize = 64;
const T: usize = 64;

fn batch(vocab: usize) -> Seq2SeqBatch {
    let mut state = 1u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) % (vocab as u64 - 3) + 3) as u32
    };
    let input_ids: Vec<u32> = (0..B * S).map(|_| next()).collect();
    let labels: Vec<i32> = (0..B * T).map(|_| next() as i32).collect();
    Seq2SeqBatch {
        b: B,
        s: S,
        t: T,
        input_ids,
        attention_mask: vec![1.0; B * S],
        decoder_input_ids: Seq2SeqBatch::shift_right(&labels, T, 0, 0),
        labels,
    }
}

fn train_step(c: &mut Criterion) {
    let be = Device::Cpu.backend().unwrap();
    let be = &*be;
    let mut group = c.benchmark_group("cpu_f32_train_step");
    group.sample_size(10);
    for (name, config) in [
        ("tiny", Config::tiny(1000)),
        ("flan-t5-small", Config::flan_t5_small()),
    ] {
        let mut model = T5Model {
            params: T5Params::init(be, &config, 0).unwrap(),
            config,
        };
        let mut grads = T5Params::zeros(be, &model.config);
        let mut opt = AdamW::new(be, &model.config, AdamWConfig::default());
        let batch = batch(model.config.vocab_size);
        let scale = 1.0 / batch.target_tokens() as f32;
        group.throughput(Throughput::Elements((B * (S + T)) as u64));
        group.bench_function(name, |bench| {
            bench.iter(|| {
                let dropout = DropoutPlan::train(0.1, 7);
                let acts = model.forward(be, &batch, 0.0, &dropout).unwrap();
                model
                    .backward(be, &batch, &acts, &mut grads, scale, &dropout)
                    .unwrap();
                drop(acts);
                let norm = grad_norm(be, &model.config, &grads).unwrap();
                opt.step(
                    be,
                    &model.config.clone(),
                    &mut model.params,
                    &grads,
                    1e-4,
                    (1.0 / norm.max(1.0)) as f32,
                )
                .unwrap();
                for (_, g, _) in grads.entries_mut(&model.config) {
                    be.fill_zero(g).unwrap();
                }
            })
        });
        eprintln!(
            "train/{name}: peak RSS {:.0} MiB",
            peak_rss_mib().unwrap_or(f64::NAN)
        );
    }
    group.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);
