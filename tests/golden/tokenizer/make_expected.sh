#!/usr/bin/env bash
# Regenerates expected/<tokenizer>.<mode>.jsonl from corpus.jsonl with the
# JavaScript reference encoder (reference_encode.mjs). Run after changing the
# corpus; commit the result. Needs node and npm (or a filled package cache).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
modules=$("$here/fetch_packages.sh")
mkdir -p "$here/expected"
for t in llama3_1 llama2; do
  for m in plain special; do
    node "$here/reference_encode.mjs" --modules "$modules" --tokenizer "$t" --mode "$m" "$here/corpus.jsonl" \
      > "$here/expected/$t.$m.jsonl"
    echo "wrote expected/$t.$m.jsonl ($(wc -l < "$here/expected/$t.$m.jsonl") lines)"
  done
done
