#!/usr/bin/env bash
# Where the start-up time of `sensecf` goes, and what the front-end saves.
#
# 1. Empty C programs linked (--no-as-needed) against one group of sensecf's
#    libraries each and timed with hyperfine: what loading, relocating and
#    initialising that group costs before main() runs.
# 2. The dynamic loader's own statistics (LD_DEBUG=statistics, with
#    LD_BIND_NOW=1 so that every symbol lookup happens up front) and the number
#    of shared objects each binary maps.
#    (The cycle counts are the time stamp counter's: compare them, do not
#    convert them; step 3 says where the time goes.)
# 3. `perf record` of `sensecf-full --version` (5 runs), share of samples by
#    shared object.
# 4. Before/after: `--version`, `explain --help` and a one-query `explain`
#    with an xgb and an nn model, for the `sensecf` of every BIN_DIR.
#
# Usage: bench/startup/measure.sh [BIN_DIR...]   (default: build/cpu-release/bin)
#   Each BIN_DIR holds a `sensecf` and, after the split into two binaries,
#   `sensecf-full` (docs/binaries.md); steps 1-3 and the test data use the
#   first one's. For before/after, pass this build's bin/ and then a directory
#   with a copy of a `sensecf` built before the split.
#   RUNS=20 WARMUP=3 set hyperfine's counts; SKIP_PERF=1 skips step 3.
# Not part of the test suite; it writes only under a fresh temporary directory.
# Needs hyperfine, a C compiler, and perf for step 3.
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
runs=${RUNS:-20}
warmup=${WARMUP:-3}
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=("$here/build/cpu-release/bin")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

hf() {  # hf NAME COMMAND: hyperfine without a shell; mean, sigma and min in ms on one line
  rm -f "$work/hf.json"
  hyperfine -N -w "$warmup" -r "$runs" --export-json "$work/hf.json" "$2" >/dev/null
  python3 - "$1" "$work/hf.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))["results"][0]
print(f"{sys.argv[1]:<46} {r['mean']*1e3:8.1f} ms  ± {r['stddev']*1e3:5.1f}  (min {r['min']*1e3:.1f})")
PY
}

echo "== 1. Empty programs linked against one library group (hyperfine, ${runs} runs)"
echo 'int main(void) { return 0; }' >"$work/empty.c"
full=${bins[0]}/sensecf-full
[ -x "$full" ] || full=${bins[0]}/sensecf
declare -A groups=(
  [none]=""
  [libtorch]="libtorch_cpu libc10 libtorch"
  [cuda_nccl]="libcudart libnccl"
  [mpi]="libmpi"
  [hdf5]="libhdf5_serial"
  [xgboost]="libxgboost"
  [libsvm]="libsvm"
  [curl_crypto]="libcurl libcrypto"
  [spdlog_fmt_boost]="libspdlog libfmt libboost_program_options"
)
for g in none spdlog_fmt_boost libsvm xgboost hdf5 mpi curl_crypto cuda_nccl libtorch; do
  libs=()
  for l in ${groups[$g]}; do
    path=$(ldd "$full" | awk -v n="$l.so" 'index($1, n) == 1 && !p {p = $3} END {print p}')
    [ -n "$path" ] || { echo "  ($l not linked by $full; skipped)"; continue 2; }
    libs+=("$path")
  done
  gcc -o "$work/empty_$g" "$work/empty.c" -Wl,--no-as-needed "${libs[@]}" \
    -Wl,-rpath,"$(dirname "${libs[0]:-/usr/lib}")"
  n=$(ldd "$work/empty_$g" | wc -l)
  hf "$g ($n shared objects)" "$work/empty_$g"
done

echo
echo "== 2. Dynamic loader statistics (LD_BIND_NOW=1 LD_DEBUG=statistics)"
for d in "${bins[@]}"; do
  for b in sensecf sensecf-full; do
    [ -x "$d/$b" ] || continue
    n=$(ldd "$d/$b" | wc -l)
    stats=$(LD_BIND_NOW=1 LD_DEBUG=statistics "$d/$b" --version 2>&1 >/dev/null |
      awk '/total startup time/ {t=$(NF-1)} /time needed for relocation/ {r=$(NF-2)} /final number of relocations:/ {n=$NF}
           END {printf "%s cycles in ld.so (%s relocating), %s relocations", t, r, n}')
    echo "$d/$b: $n shared objects; $stats"
  done
done

if [ -z "${SKIP_PERF:-}" ] && command -v perf >/dev/null; then
  echo
  echo "== 3. perf record of \`sensecf --version\` (${bins[0]}; full binary), share of samples by shared object"
  for i in 1 2 3 4 5; do
    perf record -q -F 20000 -o "$work/perf.$i.data" "$full" --version >/dev/null 2>&1 || true
  done
  for i in 1 2 3 4 5; do perf report -q -i "$work/perf.$i.data" --sort dso 2>/dev/null; done |
    awk '{gsub("%", "", $1); s[$2] += $1} END {for (k in s) printf "%7.1f%%  %s\n", s[k] / 5, k}' |
    sort -rn | head -12
fi

echo
echo "== 4. Commands (hyperfine, ${runs} runs; data: synth --seed 7, models xgb and nn)"
first=${bins[0]}
[ -x "$first/sensecf-full" ] && maker=$first/sensecf-full || maker=$first/sensecf
(cd "$work" && "$maker" synth --out C.csv --seed 7 -q >/dev/null &&
  "$maker" train-clf --data C.csv --model xgb --out Mx -q >/dev/null &&
  "$maker" train-clf --data C.csv --model nn --out Mn -q >/dev/null)
for d in "${bins[@]}"; do
  echo "-- $d"
  s=$d/sensecf
  hf "sensecf --version" "$s --version"
  hf "sensecf explain --help" "$s explain --help"
  hf "sensecf explain (xgb, nice-none, 1 query)" \
    "$s explain --clf $work/Mx --data $work/C.csv --method nice-none --limit 1 --out $work/o.csv"
  hf "sensecf explain (nn, nice-none, 1 query)" \
    "$s explain --clf $work/Mn --data $work/C.csv --method nice-none --limit 1 --out $work/o.csv"
done
