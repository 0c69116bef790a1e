#!/usr/bin/env python3
"""The reference side of the LoRA / QLoRA training benchmark: transformers +
PEFT on the same shapes, batch, sequence and loss tokens as
`sensecf lm bench-train`, with random bf16 weights made on the GPU.

One step = forward of B random sequences of T tokens with labels on the last C
tokens (-100 elsewhere, as a completion-only collator gives), backward,
clip_grad_norm_(1.0), torch.optim.AdamW (fused where available) and
zero_grad: a Trainer step without the Trainer. LoRA r 16, alpha 32, dropout
0.03 on the seven projections (the paper's Table I). --quant nf4 replaces the
seven projections by bitsandbytes Linear4bit (NF4, blocksize 64, bf16 compute)
and keeps everything else in bf16, as `lm bench-train --lm.quant nf4` does
(prepare_model_for_kbit_training would also cast the embedding and the head to
fp32, 4 GiB more at 8B: not like for like); without bitsandbytes that row says
so and is skipped. --gradient-checkpointing: transformers' non-reentrant
checkpointing of every decoder layer, as sensecf's.

Model FLOPs are counted as `lm bench-train` counts them (its file comment):
4·N·B·T for the projections, 12·L·T·H·d·B·T for attention, 4·V·h·B·C for the
LM head on the loss tokens. transformers computes the head on every position
(its default), which is its cost and not counted as useful work.

    python3 bench/gpu/hf_finetune.py --shape llama-3.1-8b --quant none,nf4 --json hf-train.jsonl

Writes one JSON line per quant (the keys of `lm bench-train --json`).
Nothing here is part of the test suite.
"""
import argparse
import json
import os
import sys
import time

import torch
import transformers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_generate import SHAPES, random_model  # noqa: E402

PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def step_flops(config, batch, seq, completion):
    h, heads, kv, inter = (config.hidden_size, config.num_attention_heads, config.num_key_value_heads,
                           config.intermediate_size)
    d = getattr(config, "head_dim", None) or h // heads
    per_layer = h * heads * d * 2 + h * kv * d * 2 + 3 * h * inter  # q, o; k, v; gate, up, down
    n = per_layer * config.num_hidden_layers
    tokens = batch * seq
    return (4.0 * n * tokens + 12.0 * config.num_hidden_layers * seq * heads * d * tokens
            + 4.0 * config.vocab_size * h * batch * completion)


def quantize_nf4(model):
    """The seven projections as bitsandbytes NF4 Linear4bit layers (bf16 compute)."""
    import bitsandbytes as bnb
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if child_name in PROJECTIONS and isinstance(child, torch.nn.Linear):
                q = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=False, compute_dtype=torch.bfloat16,
                                      quant_type="nf4", device="meta")
                q.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False, quant_type="nf4",
                                             blocksize=64).to(child.weight.device)  # quantises on the move
                setattr(module, child_name, q)
    torch.cuda.empty_cache()
    return model


def bench(args, quant):
    from peft import LoraConfig, get_peft_model
    row = {"impl": "transformers+peft", "shape": args.shape, "quant": quant, "batch": args.batch,
           "seq_len": args.seq_len, "completion_len": args.completion_len, "steps": args.steps,
           "attention": args.attention, "gradient_checkpointing": args.gradient_checkpointing,
           "peak_tflops": args.peak_tflops}
    if quant == "nf4":
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as e:
            row["skipped"] = f"bitsandbytes is not installed ({e})"
            return row
    start = time.perf_counter()
    model, config = random_model(args.shape, args.layers, args.attention)
    if quant == "nf4":
        model = quantize_nf4(model)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.03, target_modules=PROJECTIONS, bias="none",
                      task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        optimizer = torch.optim.AdamW(params, lr=2e-4, fused=True)
    except (TypeError, RuntimeError):
        optimizer = torch.optim.AdamW(params, lr=2e-4)
    torch.cuda.synchronize()
    row["load_peak_device_gib"] = torch.cuda.max_memory_allocated() / 2**30
    row["trainable_params"] = sum(p.numel() for p in params)
    row["layers"] = config.num_hidden_layers
    print(f"transformers {transformers.__version__}: {args.shape} quant {quant}, {config.num_hidden_layers} layers, "
          f"{row['trainable_params'] / 1e6:.1f}M trainable, ready in {time.perf_counter() - start:.1f} s")

    gen = torch.Generator(device="cpu").manual_seed(1)
    ids = torch.randint(0, config.vocab_size, (args.batch, args.seq_len), generator=gen).cuda()
    labels = ids.clone()
    labels[:, : args.seq_len - args.completion_len] = -100
    loss = None

    def step():
        nonlocal loss
        out = model(input_ids=ids, labels=labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss = out.loss.detach()

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    torch.cuda.synchronize()
    step_s = (time.perf_counter() - t0) / args.steps
    flops = step_flops(config, args.batch, args.seq_len, args.completion_len)
    tokens = args.batch * args.seq_len
    row.update(step_ms=step_s * 1e3, tokens_per_s=tokens / step_s, model_tflop_per_step=flops / 1e12,
               tflop_per_s=flops / step_s / 1e12, mfu=flops / step_s / 1e12 / args.peak_tflops if args.peak_tflops else 0,
               loss=float(loss), peak_device_gib=torch.cuda.max_memory_allocated() / 2**30,
               device=torch.cuda.get_device_name(), dtype="bfloat16",
               transformers=transformers.__version__, torch=torch.__version__)
    del model, optimizer, params
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="llama-3.1-8b", choices=sorted(SHAPES))
    ap.add_argument("--layers", type=int, default=0)
    ap.add_argument("--quant", default="none,nf4")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--completion-len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--attention", default="sdpa")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=989)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    rc = 0
    for quant in args.quant.split(","):
        try:
            row = bench(args, quant)
        except Exception as e:  # noqa: BLE001 - one failing row does not cost the others
            row = {"impl": "transformers+peft", "shape": args.shape, "quant": quant, "failed": f"{type(e).__name__}: {e}"}
            rc = 1
        print(json.dumps(row))
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(row) + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
