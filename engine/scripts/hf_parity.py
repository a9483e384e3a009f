#!/usr/bin/env python3
"""Golden files for the engine's Hugging Face parity test (run by hand, never by CI).

Stage `make` builds a tiny random T5ForConditionalGeneration in the v1.1 / flan-t5 layout
(gated-gelu, untied lm_head, random RMSNorm weights), runs one batch with padding and ignored
labels, and writes into engine/tests/golden/t5_tiny/:
  config.json, model.safetensors         the model, as transformers saves it
  io.safetensors                         inputs, logits and every parameter's gradient
  golden.json                            loss and provenance

Stage `reverse` loads the checkpoint the engine wrote (engine_written/, produced by
`NEGOPT_WRITE_GOLDEN=1 cargo test -p negopt-engine hf_parity`) with transformers, runs the
same batch and records the largest logit difference against the engine's own logits in
golden.json, which the Rust test then asserts.

    python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install torch transformers safetensors
    /tmp/hfvenv/bin/python engine/scripts/hf_parity.py make
    NEGOPT_WRITE_GOLDEN=1 cargo test -p negopt-engine hf_parity
    /tmp/hfvenv/bin/python engine/scripts/hf_parity.py reverse
"""

import json
import pathlib
import sys

import safetensors.torch
import torch
import transformers
from transformers import T5Config, T5ForConditionalGeneration

GOLDEN = pathlib.Path(__file__).resolve().parent.parent / "tests" / "golden" / "t5_tiny"


def config():
    return T5Config(
        vocab_size=96,
        d_model=32,
        d_kv=8,
        d_ff=48,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=20,
        dropout_rate=0.0,
        layer_norm_epsilon=1e-6,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )


def batch():
    # Row 1's source is padded (mask 0); labels carry -100 on ignored target positions.
    input_ids = torch.tensor([[5, 17, 33, 2, 61, 9, 1], [44, 8, 90, 1, 0, 0, 0]])
    attention_mask = (torch.arange(7)[None, :] < torch.tensor([[7], [4]])).long()
    labels = torch.tensor([[12, 7, 55, 3, 1], [70, 21, 1, -100, -100]])
    return input_ids, attention_mask, labels


def make():
    torch.manual_seed(0)
    cfg = config()
    model = T5ForConditionalGeneration(cfg).float()
    with torch.no_grad():
        # transformers 5.x ties lm_head to shared at construction: give it its own weight.
        model.lm_head.weight = torch.nn.Parameter(0.05 * torch.randn(cfg.vocab_size, cfg.d_model))
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    model.train(False)
    input_ids, attention_mask, labels = batch()
    out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    out.loss.backward()

    GOLDEN.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()
             if k not in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")}
    safetensors.torch.save_file(state, GOLDEN / "model.safetensors", metadata={"format": "pt"})
    cfg_json = cfg.to_dict()
    cfg_json["tie_word_embeddings"] = False
    cfg_json["architectures"] = ["T5ForConditionalGeneration"]
    (GOLDEN / "config.json").write_text(json.dumps(cfg_json, indent=2, sort_keys=True))
    io = {
        "input_ids": input_ids.float(),
        "attention_mask": attention_mask.float(),
        "labels": labels.float(),
        "logits": out.logits.detach().contiguous(),
    }
    for name, p in model.named_parameters():
        if p.grad is not None:
            io["grad." + name] = p.grad.detach().contiguous()
    safetensors.torch.save_file(io, GOLDEN / "io.safetensors")
    golden = {
        "loss": out.loss.item(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "note": "written by engine/scripts/hf_parity.py make",
    }
    (GOLDEN / "golden.json").write_text(json.dumps(golden, indent=2) + "\n")
    print(f"loss {out.loss.item():.8f}; wrote {GOLDEN}")


def reverse():
    written = GOLDEN / "engine_written"
    model = T5ForConditionalGeneration.from_pretrained(written)
    model.train(False)
    input_ids, attention_mask, labels = batch()
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    engine = safetensors.torch.load_file(written / "engine_logits.safetensors")
    diff = (out.logits - engine["logits"]).abs().max().item()
    untied = not torch.equal(model.lm_head.weight, model.shared.weight)
    golden = json.loads((GOLDEN / "golden.json").read_text())
    golden["reverse"] = {
        "max_abs_logit_diff": diff,
        "transformers_loss": out.loss.item(),
        "lm_head_untied_after_load": untied,
        "note": "engine_written/ loaded by transformers.T5ForConditionalGeneration.from_pretrained",
    }
    (GOLDEN / "golden.json").write_text(json.dumps(golden, indent=2) + "\n")
    print(f"reverse: max |logit diff| {diff:.3e}, lm_head untied: {untied}")


if __name__ == "__main__":
    {"make": make, "reverse": reverse}[sys.argv[1] if len(sys.argv) > 1 else "make"]()
