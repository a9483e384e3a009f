#!/usr/bin/env python3
"""PyTorch CPU eager fp32 peer of `cargo bench -p negopt-benches --bench train`.

Same shapes as the Rust bench: one full training step (forward, backward, AdamW) of a
T5ForConditionalGeneration with random weights and tokens, batch 16, source 64 / target 64
tokens, for the tiny built-in config and the flan-t5-small shape. Each config runs in its own
process so its peak RSS is its own. Prints the median step time and tokens/s (source + target
tokens per second) and the peak RSS.

    /tmp/hfvenv/bin/python engine/scripts/bench_train_torch.py --threads 2
"""

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import time

B, S, T = 16, 64, 64

CONFIGS = {
    "tiny": dict(vocab_size=1000, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2,
                 num_heads=4),
    "flan-t5-small": dict(vocab_size=32128, d_model=512, d_kv=64, d_ff=1024, num_layers=8,
                          num_decoder_layers=8, num_heads=6),
}


def run(name, threads, steps, out):
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = T5Config(**CONFIGS[name], feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                   dropout_rate=0.1, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    model = T5ForConditionalGeneration(cfg).float().train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    g = torch.Generator().manual_seed(1)
    input_ids = torch.randint(3, cfg.vocab_size, (B, S), generator=g)
    labels = torch.randint(3, cfg.vocab_size, (B, T), generator=g)
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        loss = model(input_ids=input_ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=False)
        if i >= 2:  # two warm-up steps
            times.append(time.perf_counter() - start)
    med = statistics.median(times)
    out.put(dict(config=name, threads=threads, median_s=med, tokens_per_s=B * (S + T) / med,
                 peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                 torch=torch.__version__))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--config", choices=list(CONFIGS), action="append",
                    help="run only this config (repeatable); default: all")
    args = ap.parse_args()
    for name in args.config or CONFIGS:
        q = mp.get_context("spawn").Queue()
        p = mp.get_context("spawn").Process(target=run, args=(name, args.threads, args.steps, q))
        p.start()
        print(json.dumps(q.get()))
        p.join()
