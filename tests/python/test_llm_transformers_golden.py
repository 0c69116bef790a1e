"""`sensecf lm logits` / `lm generate` against fixtures from Hugging Face transformers.

The fixtures (tests/golden/llm/fixtures/<family>.json) are written by
tests/golden/llm/make_goldens.py where transformers is installed: transformers'
own LlamaForCausalLM / MistralForCausalLM loads the tiny random checkpoint that
`sensecf lm init-tiny --seed 3` makes (deterministic), and records logits rows
of a forward pass and greedy continuations, single and as a left-padded batch.
This test re-creates the same checkpoint and requires max abs diff <= 1e-4 on
the logits and identical greedy ids.

Exit 77 (skipped, with the reason) while no fixture has been produced.
"""
import json
import os
import sys

import numpy as np

from llm_fixtures import check_fixtures, load_fixture, run

TOLERANCE = 1e-4


def check_family(path, work):
    fx, model = load_fixture(path, work)
    family = fx["family"]

    ids = json.loads(run("lm", "tokenize", "--tokenizer", os.path.join(model, "tokenizer.json"), "--text", fx["text"]))
    assert ids == fx["ids"], f"{family}: tokenisation differs from the fixture's:\n ours {ids}\n hf   {fx['ids']}"

    out = os.path.join(work, family + ".npy")
    run("lm", "logits", "--model", model, "--ids", ",".join(map(str, fx["ids"])), "--out", out, "--log.level", "warn")
    logits = np.load(out)
    worst = 0.0
    for t, row in fx["logits_rows"].items():
        diff = float(np.max(np.abs(logits[int(t)] - np.asarray(row))))
        worst = max(worst, diff)
        assert diff <= TOLERANCE, f"{family}: logits row {t} differs from transformers by {diff:.3g} > {TOLERANCE}"

    def generate(prompts):
        batch = os.path.join(work, family + "-prompts.jsonl")
        with open(batch, "w") as f:
            f.writelines(json.dumps({"ids": p}) + "\n" for p in prompts)
        out = run("lm", "generate", "--model", model, "--prompts", batch, "--max-new-tokens", "16", "--log.level", "warn")
        return [json.loads(line)["ids"] for line in out.splitlines() if line.strip()]

    (single,) = generate([fx["ids"]])
    assert single == fx["greedy_16"], f"{family}: greedy ids differ:\n ours {single}\n hf   {fx['greedy_16']}"
    batched = generate(fx["batch_ids"])
    assert batched == fx["batch_greedy_16"], (f"{family}: batched (left-padded) greedy ids differ:\n"
                                              f" ours {batched}\n hf   {fx['batch_greedy_16']}")
    print(f"{family}: logits max abs diff {worst:.2e} (transformers {fx['transformers']}), "
          f"greedy and batched greedy ids equal")


def main():
    return check_fixtures(lambda name: not name.startswith("peft-"), check_family, "transformers")


if __name__ == "__main__":
    sys.exit(main())
