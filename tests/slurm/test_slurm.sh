#!/usr/bin/env bash
# The job scripts in jobs/ on a real (one-node, local) Slurm: scripts/slurm-local up, then
#   1. srun --mpi=pmix -n 3 sensecf info              (PMIx direct launch: 3 ranks of one world)
#   2. srun --gpus-per-task=1                         (fake GPUs: one CUDA_VISIBLE_DEVICES per task)
#   3. sbatch --wait jobs/slurm-one-node.sbatch        (srun launcher, probe sweep of 20 tasks)
#   4. jobs/slurm-multi-node.sbatch on 1 node         (mpirun launcher)
#   5. preemption: scancel --signal=USR1 --batch a running 120-task sweep; the sweep drains and
#      exits 75, the script requeues the job, the requeued job resumes and completes
#   6. scancel --signal=USR2 --batch: drain without requeue (exit 75), then a resubmission
#      completes the sweep
#   7. plain scancel: the sweep drains on SIGTERM and the job stays cancelled (no requeue)
# and checks every results file with h5py (/tasks: one row per task, all 'done', no duplicate
# keys). Slurm is brought down at the end (unless it was already up: then it is left up).
#
# Needs root and slurm-wlm + munge (apt-get install slurm-wlm munge; scripts/setup-deps).
# Exit codes: 0 pass, 1 fail, 77 skipped (not root, Slurm not installed, or a Slurm config
# that scripts/slurm-local did not write). Takes 80-130 s, mostly waiting (requeue delay,
# sbatch --wait polling); little CPU.
# SENSECF_BIN: the binary (default build/cpu-release/bin/sensecf).
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo" || exit 1
bin=${SENSECF_BIN:-build/cpu-release/bin/sensecf}
[[ $bin == /* ]] || bin=$repo/$bin
py=/usr/bin/python3
t0=$(date +%s)

say() { echo "test_slurm [$(($(date +%s) - t0))s]: $*"; }
skip() { echo "test_slurm: SKIP: $*"; exit 77; }

# --- preconditions --------------------------------------------------------------------------
[[ $(id -u) -eq 0 ]] || skip "needs root (writes /etc/slurm, starts daemons)"
for b in slurmctld slurmd munged sbatch srun; do
  [[ -x /usr/sbin/$b || -x /usr/bin/$b ]] || command -v "$b" >/dev/null ||
    skip "$b not installed (apt-get install slurm-wlm munge)"
done
if [[ -e /etc/slurm/slurm.conf ]] && ! grep -q 'Written by sensecf scripts/slurm-local' /etc/slurm/slurm.conf; then
  skip "/etc/slurm/slurm.conf was not written by scripts/slurm-local; not touching this Slurm"
fi
[[ -x $bin ]] || { echo "test_slurm: FAIL: no binary $bin" >&2; exit 1; }
"$bin" sweep --help >/dev/null 2>&1 || { echo "test_slurm: FAIL: $bin has no 'sweep' command" >&2; exit 1; }
$py -c 'import h5py' 2>/dev/null || { echo "test_slurm: FAIL: $py cannot import h5py (python3-h5py)" >&2; exit 1; }

# One run at a time on this machine (the daemons and /etc/slurm are machine-wide).
lock_dir=/run/lock
[[ -d $lock_dir ]] || lock_dir=/tmp
exec 9>"$lock_dir/sensecf-slurm-test.lock"
flock -w 300 9 || { echo "test_slurm: FAIL: another Slurm test holds the lock for 300 s" >&2; exit 1; }

tmp=$(mktemp -d /tmp/sensecf-slurm-test.XXXXXX)
started_slurm=0
failed=0
cleanup() {
  if ((started_slurm)); then scripts/slurm-local down >/dev/null 2>&1 || true; fi
  if ((failed)); then
    echo "test_slurm: files kept in $tmp" >&2
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
  failed=1
  echo "test_slurm: FAIL: $*" >&2
  local f
  for f in "$tmp"/*.out; do
    [[ -e $f ]] || continue
    echo "----- $f (last 30 lines) -----" >&2
    tail -n 30 "$f" >&2
  done
  echo "----- squeue -----" >&2
  squeue >&2 2>&1 || true
  echo "----- /var/log/slurm/slurmctld.log (last 15 lines) -----" >&2
  tail -n 15 /var/log/slurm/slurmctld.log >&2 2>/dev/null || true
  exit 1
}

# scontrol field of a job: job_field JOBID JobState
job_field() { scontrol -o show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# wait_until SECONDS DESCRIPTION COMMAND...: poll every 0.5 s until COMMAND succeeds.
wait_until() {
  local limit=$1 what=$2 i
  shift 2
  for ((i = 0; i < limit * 2; i++)); do
    "$@" && return 0
    sleep 0.5
  done
  fail "timed out after ${limit}s waiting for: $what"
}

job_finished() {
  case $(job_field "$1" JobState) in
    COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) return 0 ;;
    *) return 1 ;;
  esac
}

# check_results FILE NTASKS: /tasks has NTASKS rows, unique keys, all status 'done'.
check_results() {
  $py - "$1" "$2" <<'EOF' || fail "results check of $1"
import sys, h5py
path, n = sys.argv[1], int(sys.argv[2])
with h5py.File(path, "r") as f:
    t = f["tasks"][:]
names = t.dtype.names
for col in ("key", "kind", "status"):
    assert col in names, f"/tasks has no column {col!r}: {names}"
keys = [k.decode() for k in t["key"]]
status = [s.decode() for s in t["status"]]
assert len(t) == n, f"{len(t)} rows in /tasks, want {n}"
assert len(set(keys)) == n, f"duplicate keys: {len(keys) - len(set(keys))}"
bad = [(k, s) for k, s in zip(keys, status) if s != "done"]
assert not bad, f"tasks not done: {bad[:5]}"
print(f"{path}: {n} tasks, all done, no duplicates")
EOF
}

rows_in() { $py -c 'import sys,h5py; print(len(h5py.File(sys.argv[1],"r")["tasks"]))' "$1" 2>/dev/null; }

probe_config() {  # FILE TASKS MS
  printf '[sweep]\nplan = probe\nprobe_tasks = %s\nprobe_ms = %s\n' "$2" "$3" >"$1"
}

# --- local Slurm ----------------------------------------------------------------------------
if scripts/slurm-local status >/dev/null 2>&1; then
  say "local Slurm already up: using it (and leaving it up)"
else
  started_slurm=1
  # Finished jobs stay 16 s in slurmctld (this test reads them at once); that keeps the poll
  # interval of `sbatch --wait` at 8 s instead of 32 s.
  SLURM_LOCAL_MIN_JOB_AGE=16 scripts/slurm-local up || fail "scripts/slurm-local up"
fi

# --- 1. srun --mpi=pmix smoke ---------------------------------------------------------------
say "srun --mpi=pmix -n 3 sensecf info"
out=$(srun --mpi=pmix -n 3 "$bin" info --log.level warn 2>&1) || fail "srun sensecf info: $out"
for r in 0 1 2; do
  grep -q "rank $r/3 " <<<"$out" || fail "srun -n 3 info: no 'rank $r/3' line in: $out"
done

# --- 2. fake GPUs: one device per task -------------------------------------------------------
if sinfo -h -o %G | grep -q gpu; then
  say "srun --gpus-per-task=1: one CUDA_VISIBLE_DEVICES per task"
  # shellcheck disable=SC2016  # expanded by the task's shell
  cvd=$(srun -n 3 --gpus-per-task=1 bash -c 'echo "$CUDA_VISIBLE_DEVICES"' | sort) || fail "srun --gpus-per-task=1"
  [[ $(wc -l <<<"$cvd") -eq 3 && $(sort -u <<<"$cvd" | wc -l) -eq 3 && ! $cvd =~ , ]] ||
    fail "--gpus-per-task=1: want 3 distinct single devices, got: ${cvd//$'\n'/ }"
else
  say "no GPU GRES on the local node: GPU binding not checked"
fi

# --- 3. sbatch --wait, one node, srun launcher ------------------------------------------------
probe_config "$tmp/probe.ini" 20 50
say "sbatch --wait jobs/slurm-one-node.sbatch (srun, 3 tasks, --gpus-per-task=1, 20 probe tasks)"
gpu_opt=()
sinfo -h -o %G | grep -q gpu && gpu_opt=(--gpus-per-task=1)
jid=$(sbatch --parsable --wait --ntasks=3 "${gpu_opt[@]}" --chdir="$tmp" --output="$tmp/one-%j.out" \
  "--export=ALL,SENSECF_BIN=$bin,SENSECF_CONFIG=$tmp/probe.ini,SENSECF_RESULTS=$tmp/one.h5" \
  jobs/slurm-one-node.sbatch)
rc=$?
((rc == 0)) || fail "sbatch --wait exited $rc (job ${jid:-?})"
grep -q "all tasks done" "$tmp/one-$jid.out" || fail "job $jid: no 'all tasks done' in its output"
grep -q "(restart 0)" "$tmp/one-$jid.out" || fail "job $jid: SLURM_RESTART_COUNT not printed"
check_results "$tmp/one.h5" 20

# --- 4. multi-node script on one node, mpirun launcher -------------------------------------------
say "jobs/slurm-multi-node.sbatch on 1 node (mpirun launcher)"
jid=$(sbatch --parsable --nodes=1 --ntasks-per-node=3 --cpus-per-task=1 "${gpu_opt[@]}" --chdir="$tmp" \
  --output="$tmp/multi-%j.out" \
  "--export=ALL,SENSECF_LAUNCHER=mpirun,SENSECF_BIN=$bin,SENSECF_CONFIG=$tmp/probe.ini,SENSECF_RESULTS=$tmp/multi.h5" \
  jobs/slurm-multi-node.sbatch) || fail "sbatch multi-node"
wait_until 90 "job $jid to finish" job_finished "$jid"
[[ $(job_field "$jid" JobState) == COMPLETED && $(job_field "$jid" ExitCode) == 0:0 ]] ||
  fail "job $jid: $(job_field "$jid" JobState) $(job_field "$jid" ExitCode)"
check_results "$tmp/multi.h5" 20

# --- 5. preemption: USR1 -> drain -> exit 75 -> requeue -> resume ----------------------------
probe_config "$tmp/long.ini" 120 100
say "preemption: 120 x 100 ms probe sweep, scancel --signal=USR1 --batch, expect requeue"
jid=$(sbatch --parsable --ntasks=3 --chdir="$tmp" --output="$tmp/preempt-%j.out" \
  "--export=ALL,SENSECF_BIN=$bin,SENSECF_CONFIG=$tmp/long.ini,SENSECF_RESULTS=$tmp/preempt.h5" \
  jobs/slurm-one-node.sbatch) || fail "sbatch preempt"
# Signal once some tasks are in the journal (first line: header; then one line per task).
journal_has_tasks() { [[ -e $tmp/preempt.h5.journal && $(wc -l <"$tmp/preempt.h5.journal") -ge 6 ]]; }
wait_until 60 "job $jid to finish a few tasks" journal_has_tasks
scancel --signal=USR1 --batch "$jid" || fail "scancel --signal=USR1 --batch $jid"
requeued() { [[ $(job_field "$jid" Restarts) -ge 1 ]]; }
wait_until 60 "job $jid to be requeued" requeued
wait_until 30 "the sweep's results after the drain" test -s "$tmp/preempt.h5"
first=$(rows_in "$tmp/preempt.h5")
say "requeued; $first of 120 tasks were saved by the drain"
if ! [[ $first =~ ^[0-9]+$ ]] || ((first < 1 || first > 119)); then
  fail "after the drain: '$first' rows, want 1..119"
fi
grep -q "sweep exited with 75" "$tmp/preempt-$jid.out" || fail "job $jid: the sweep did not exit 75 on SIGUSR1"
wait_until 120 "requeued job $jid to finish" job_finished "$jid"
[[ $(job_field "$jid" JobState) == COMPLETED && $(job_field "$jid" ExitCode) == 0:0 ]] ||
  fail "requeued job $jid: $(job_field "$jid" JobState) $(job_field "$jid" ExitCode)"
grep -q "(restart 1)" "$tmp/preempt-$jid.out" || fail "job $jid: no '(restart 1)' in its output"
check_results "$tmp/preempt.h5" 120

# --- 6. USR2: drain without requeue, then resubmit -----------------------------------------------
probe_config "$tmp/stop.ini" 60 100
say "scancel --signal=USR2 --batch: drain, no requeue; a resubmission completes"
export_vars="ALL,SENSECF_BIN=$bin,SENSECF_CONFIG=$tmp/stop.ini,SENSECF_RESULTS=$tmp/stop.h5"
jid=$(sbatch --parsable --ntasks=3 --chdir="$tmp" --output="$tmp/stop-%j.out" --export="$export_vars" \
  jobs/slurm-one-node.sbatch) || fail "sbatch stop"
stop_journal_has_tasks() { [[ -e $tmp/stop.h5.journal && $(wc -l <"$tmp/stop.h5.journal") -ge 4 ]]; }
wait_until 60 "job $jid to finish a few tasks" stop_journal_has_tasks
scancel --signal=USR2 --batch "$jid" || fail "scancel --signal=USR2 --batch $jid"
wait_until 60 "job $jid to end" job_finished "$jid"
[[ $(job_field "$jid" ExitCode) == 75:0 && $(job_field "$jid" Restarts) == 0 ]] ||
  fail "job $jid after USR2: ExitCode $(job_field "$jid" ExitCode), Restarts $(job_field "$jid" Restarts); want 75:0, 0"
first=$(rows_in "$tmp/stop.h5")
if ! [[ $first =~ ^[0-9]+$ ]] || ((first < 1 || first > 59)); then
  fail "after the USR2 drain: '$first' rows, want 1..59"
fi
# (Polling, not sbatch --wait: its poll interval grows to 30 s and more.)
jid=$(sbatch --parsable --ntasks=3 --chdir="$tmp" --output="$tmp/stop-%j.out" --export="$export_vars" \
  jobs/slurm-one-node.sbatch) || fail "sbatch stop (resubmission)"
wait_until 90 "resubmitted job $jid to finish" job_finished "$jid"
[[ $(job_field "$jid" JobState) == COMPLETED && $(job_field "$jid" ExitCode) == 0:0 ]] ||
  fail "resubmitted job $jid: $(job_field "$jid" JobState) $(job_field "$jid" ExitCode)"
check_results "$tmp/stop.h5" 60

# --- 7. plain scancel: the sweep drains on SIGTERM, the job stays cancelled --------------------
say "plain scancel: drained on SIGTERM, not requeued"
jid=$(sbatch --parsable --ntasks=3 --chdir="$tmp" --output="$tmp/cancel-%j.out" \
  "--export=ALL,SENSECF_BIN=$bin,SENSECF_CONFIG=$tmp/long.ini,SENSECF_RESULTS=$tmp/cancel.h5" \
  jobs/slurm-one-node.sbatch) || fail "sbatch cancel"
cancel_journal_has_tasks() { [[ -e $tmp/cancel.h5.journal && $(wc -l <"$tmp/cancel.h5.journal") -ge 4 ]]; }
wait_until 60 "job $jid to finish a few tasks" cancel_journal_has_tasks
scancel "$jid" || fail "scancel $jid"
wait_until 60 "job $jid to end" job_finished "$jid"
sleep 1
[[ $(job_field "$jid" JobState) == CANCELLED && $(job_field "$jid" Restarts) == 0 ]] ||
  fail "job $jid after scancel: $(job_field "$jid" JobState), Restarts $(job_field "$jid" Restarts); want CANCELLED, 0"
grep -q "not requeueing" "$tmp/cancel-$jid.out" || fail "job $jid: no 'not requeueing' in its output"
first=$(rows_in "$tmp/cancel.h5")
check_results "$tmp/cancel.h5" "$first"

say "PASS"
