#!/usr/bin/env bash
# One fuzzing campaign of CPU_SECONDS of the fuzzer's own CPU time (not wall
# time: on a shared machine a wall-clock -max_total_time can leave a campaign
# with a fraction of the CPU it was meant to have), then the new inputs merged,
# minimised, into the committed corpus.
#
#   fuzz/campaign.sh TARGET [CPU_SECONDS=600]    # from the repository root
#
# TARGET: safetensors_header torch_bin csv options tokenizer results answer.
# Needs build/fuzz (fuzz/CMakeLists.txt). One process at nice 19; new
# inputs go to build/fuzz/new_TARGET, the log to build/fuzz/logs/TARGET.log,
# crashes to build/fuzz/crash_TARGET_*. The log ends with libFuzzer's final
# statistics.
#
set -euo pipefail
shopt -s nullglob  # an empty corpus folder is fine
target=$1
cpu_limit=${2:-600}
fuzzer=build/fuzz/fuzz_$target
dict=fuzz/$target.dict
[[ $target == safetensors_header ]] && dict=fuzz/safetensors.dict
[[ -x $fuzzer ]] || { echo "$fuzzer is not built: cmake --build build/fuzz" >&2; exit 1; }
mkdir -p "build/fuzz/new_$target" build/fuzz/logs "fuzz/corpus/$target"
log=build/fuzz/logs/$target.log
args=(-max_total_time=$((cpu_limit * 20)) -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
      -artifact_prefix="build/fuzz/crash_${target}_")
[[ -f $dict ]] && args+=(-dict="$dict")
# fuzz_results builds a file from its input: short inputs only reach the root
# attributes, so inputs start at full length.
[[ $target == results ]] && args+=(-len_control=0 -max_len=2048)
start=$(date +%s)
nice -n 19 "$fuzzer" "${args[@]}" "build/fuzz/new_$target" "fuzz/corpus/$target" >"$log" 2>&1 &
pid=$!
ticks=$(getconf CLK_TCK)
while kill -0 "$pid" 2>/dev/null; do
  sleep 5
  read -r -a stat <"/proc/$pid/stat" 2>/dev/null || break
  cpu=$(( (stat[13] + stat[14]) / ticks ))
  if (( cpu >= cpu_limit )); then
    kill -INT "$pid"  # libFuzzer prints its final statistics and exits
    break
  fi
done
wait "$pid" && rc=0 || rc=$?
echo "fuzz_$target: ${cpu:-?} CPU seconds in $(( $(date +%s) - start )) s wall, exit $rc" | tee -a "$log"
grep -E '^stat::|^#[0-9]+ +(DONE|pulse|NEW|REDUCE)' "$log" | tail -8
ls build/fuzz/crash_"${target}"_* 2>/dev/null && exit 1
# Minimise: the hand-written seeds and finding_* files (names that are not a
# SHA-1) stay; of the rest, only inputs that add edge coverage (-use_counters=0:
# edges, not hit counts, which keeps the committed corpus small).
min=build/fuzz/min_$target
rm -rf "$min" && mkdir -p "$min"
for f in "fuzz/corpus/$target"/*; do
  [[ $(basename "$f") =~ ^[0-9a-f]{40}$ ]] || cp "$f" "$min/"
done
"$fuzzer" -merge=1 -use_counters=0 "$min" "fuzz/corpus/$target" "build/fuzz/new_$target" >>"$log" 2>&1
rm -f "fuzz/corpus/$target"/* && cp "$min"/* "fuzz/corpus/$target/"
echo "corpus fuzz/corpus/$target: $(ls "fuzz/corpus/$target" | wc -l) files, $(du -sb "fuzz/corpus/$target" | cut -f1) bytes"
