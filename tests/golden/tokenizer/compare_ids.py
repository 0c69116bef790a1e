#!/usr/bin/env python3
"""Compares two files of token ids (one JSON array per line) for the same corpus.

Prints one PASS line, or FAIL with the first differing line: its text, both id
lists and the tokens (from tokenizer.json) around the first difference, and the
number of differing lines. Exit 0 on a match, 1 otherwise.
"""
import argparse
import json
import sys


def load_lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f.read().split("\n") if line.strip()]


def token_names(tokenizer_path):
    with open(tokenizer_path, encoding="utf-8") as f:
        tj = json.load(f)
    names = {i: t for t, i in tj["model"]["vocab"].items()}
    for a in tj.get("added_tokens") or []:
        names[a["id"]] = a["content"]
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--expected", required=True)
    ap.add_argument("--got", required=True)
    a = ap.parse_args()
    corpus = load_lines(a.corpus)
    expected = load_lines(a.expected)
    got = load_lines(a.got)
    if not (len(corpus) == len(expected) == len(got)):
        print(f"FAIL {a.name}: line counts differ: corpus {len(corpus)}, expected {len(expected)}, got {len(got)}")
        return 1
    bad = [i for i in range(len(corpus)) if expected[i] != got[i]]
    if not bad:
        print(f"PASS {a.name}: {len(corpus)} lines, {sum(map(len, got))} ids")
        return 0
    names = token_names(a.tokenizer)
    i = bad[0]
    e, g = expected[i], got[i]
    k = next((k for k in range(min(len(e), len(g))) if e[k] != g[k]), min(len(e), len(g)))
    show = lambda ids: " ".join(f"{x}:{json.dumps(names.get(x, '?'), ensure_ascii=False)}" for x in ids)
    print(f"FAIL {a.name}: {len(bad)} of {len(corpus)} lines differ; first at corpus line {i + 1}:")
    print(f"  text     {json.dumps(corpus[i], ensure_ascii=False)}")
    print(f"  expected {e}")
    print(f"  got      {g}")
    print(f"  first difference at position {k}:")
    print(f"    expected ... {show(e[max(0, k - 2):k + 4])}")
    print(f"    got      ... {show(g[max(0, k - 2):k + 4])}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
