#!/usr/bin/env python3
"""The reference side of the GPU decode benchmark: Hugging Face transformers'
`generate` on the same shapes, dtype, batch sizes, prompt and output lengths
as `sensecf lm bench`, with random weights made on the GPU.

Timed the same way as `lm bench`: one generate call per repetition, a
timestamp each time a token is ready (a StoppingCriteria that synchronises the
device), so the first stamp is the prefill and the gaps are decode steps.
Bytes per step use lm bench's count: every weight but the embedding table,
plus the K/V cache read. Also measures the device's copy bandwidth (bytes read
+ written by a large device-to-device copy), the practical roofline.

    python3 bench/gpu/hf_generate.py --shape llama-3.1-8b --batch 1,8,64 --json hf.jsonl

Writes one JSON line per batch size (same keys as `lm bench --json`) and a
{"copy_gb_per_s": ...} line. Nothing here is part of the test suite.
"""
import argparse
import json
import time

import torch
import transformers

# The published configs, as in llm::ModelConfig::preset (src/llm/config.cpp).
SHAPES = {
    "llama-3.1-8b": dict(model_type="llama", vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                         num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                         max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
                         rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                       "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
                         tie_word_embeddings=False, bos_token_id=128000, eos_token_id=128001),
    "biomistral-7b": dict(model_type="mistral", vocab_size=32000, hidden_size=4096, intermediate_size=14336,
                          num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                          max_position_embeddings=32768, rms_norm_eps=1e-5, rope_theta=10000.0,
                          sliding_window=4096, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2),
}


class Stamps(transformers.StoppingCriteria):
    def __init__(self):
        self.t0 = 0.0
        self.stamps = []

    def __call__(self, input_ids, scores, **kwargs):
        torch.cuda.synchronize()
        self.stamps.append(time.perf_counter() - self.t0)
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def random_model(shape, layers, attention):
    """transformers' model of SHAPES[shape] (layers > 0: that many) with random
    bf16 weights made on the GPU, and its config (also for hf_finetune.py)."""
    fields = dict(SHAPES[shape])
    model_type = fields.pop("model_type")
    if layers:
        fields["num_hidden_layers"] = layers
    config = transformers.AutoConfig.for_model(model_type, **fields)
    config._attn_implementation = attention
    torch.manual_seed(1)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    torch.set_default_dtype(torch.float32)
    return model, config


def copy_bandwidth(gib=4):
    n = gib * (1 << 30) // 2
    src = torch.randn(n, dtype=torch.bfloat16, device="cuda")
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(10):
        dst.copy_(src)
    end.record()
    torch.cuda.synchronize()
    seconds = start.elapsed_time(end) / 1e3 / 10
    return 2 * src.numel() * src.element_size() / seconds / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="llama-3.1-8b", choices=sorted(SHAPES))
    ap.add_argument("--layers", type=int, default=0)
    ap.add_argument("--batch", default="1,8,64")
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--peak-gbs", type=float, default=4800)
    ap.add_argument("--attention", default="sdpa")
    ap.add_argument("--json", default="")
    args = ap.parse_args()

    start = time.perf_counter()
    model, config = random_model(args.shape, args.layers, args.attention)
    model.eval()
    torch.cuda.synchronize()
    print(f"transformers {transformers.__version__}, torch {torch.__version__}: {args.shape} "
          f"({config.num_hidden_layers} layers) random bf16 weights on cuda in {time.perf_counter() - start:.1f} s")

    weights = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n)
    kv_per_token = 2 * config.num_hidden_layers * config.num_key_value_heads * (
        config.hidden_size // config.num_attention_heads)
    out = open(args.json, "w") if args.json else None
    copy = copy_bandwidth()
    print(f"device-to-device copy: {copy:.0f} GB/s (read + write)")
    if out:
        out.write(json.dumps({"copy_gb_per_s": copy, "device": torch.cuda.get_device_name()}) + "\n")
    print(f"{'batch':>6} {'prefill tok/s':>14} {'decode tok/s':>14} {'step ms':>10} {'GB/s':>8} {'roofline':>9}")
    gen = torch.Generator(device="cpu").manual_seed(1)
    for batch in [int(b) for b in args.batch.split(",")]:
        ids = torch.randint(0, config.vocab_size, (batch, args.prompt_len), generator=gen).cuda()
        mask = torch.ones_like(ids)
        stamps = Stamps()

        def run(new_tokens):
            stamps.stamps = []
            stamps.t0 = time.perf_counter()
            with torch.no_grad():
                model.generate(ids, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                               do_sample=False, pad_token_id=0,
                               stopping_criteria=transformers.StoppingCriteriaList([stamps]))
            return list(stamps.stamps)

        run(2)  # warm-up
        prefill, step = float("inf"), float("inf")
        for _ in range(args.repeat):
            s = run(args.new_tokens)
            assert len(s) == args.new_tokens, f"expected {args.new_tokens} stamps, got {len(s)}"
            prefill = min(prefill, s[0])
            step = min(step, (s[-1] - s[1]) / (args.new_tokens - 2))  # as lm bench: the first decode step may set up
        bytes_per_step = (weights + kv_per_token * (args.prompt_len + args.new_tokens / 2) * batch) * 2
        gbs = bytes_per_step / step / 1e9
        row = {"impl": "transformers", "transformers": transformers.__version__, "shape": args.shape,
               "layers": config.num_hidden_layers, "device": "cuda:0", "dtype": "bfloat16",
               "attention": args.attention, "batch": batch, "prompt_len": args.prompt_len,
               "new_tokens": args.new_tokens, "prefill_tokens_per_s": batch * args.prompt_len / prefill,
               "decode_tokens_per_s": batch / step, "decode_step_ms": step * 1e3,
               "decode_bytes_per_step": bytes_per_step, "decode_gb_per_s": gbs, "peak_gb_per_s": args.peak_gbs,
               "roofline_fraction": gbs / args.peak_gbs}
        print(f"{batch:>6} {row['prefill_tokens_per_s']:>14.0f} {row['decode_tokens_per_s']:>14.1f} "
              f"{step * 1e3:>10.2f} {gbs:>8.0f} {100 * gbs / args.peak_gbs:>8.0f}%", flush=True)
        if out:
            out.write(json.dumps(row) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
