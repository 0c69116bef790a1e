#!/bin/bash
# `sensecf sweep` under PBS Pro / OpenPBS (Torque: see the #PBS lines below). Rank 0 coordinates,
# ranks 1..N-1 run tasks; mpiprocs ranks per node, each picks GPU local_rank % GPUs-on-node.
# See docs/hpc.md.
#
#   qsub jobs/pbs.sh
#   qsub -v SENSECF_CONFIG=configs/paper.ini,SENSECF_RESULTS=results/paper.h5 jobs/pbs.sh
#
# NOT TESTED on a PBS system (none was available): `bash -n` clean, and run by hand outside PBS
# with a fake qstat/qsub on PATH and a PBS_NODEFILE (timer drain -> exit 75 -> qsub). The
# signal/requeue logic is the one of jobs/slurm-one-node.sbatch, which tests/slurm/test_slurm.sh
# runs on a real (local) Slurm.
#
# Environment (defaults in brackets; relative paths are relative to the qsub directory):
#   SENSECF_CONFIG    sweep config                      [configs/paper.ini]
#   SENSECF_RESULTS   results file (+ .journal, .work/)  [results/<config name>.h5]
#   SENSECF_BIN       sensecf binary                    [build/cuda-release/bin/sensecf if built,
#                                                         else build/cpu-release/bin/sensecf]
#   SENSECF_ARGS      more `sensecf sweep` arguments (split on spaces; no commas: qsub -v)
#   SENSECF_DRAIN_BEFORE  seconds before the walltime at which the sweep is asked to drain [180]
#   SENSECF_RESUBMIT  on exit 75: qrerun | qsub | none   [qsub]
#   SENSECF_JOB_SCRIPT    this script, for resubmission with qsub [jobs/pbs.sh]
#   SENSECF_MAX_RESTARTS  stop resubmitting after this many restarts [20]
#
# Signals: PBS sends SIGTERM at the walltime (and on qdel) and SIGKILL kill_delay seconds later
# (kill_delay, often 10 s or less): too short to drain. So this script asks the sweep to drain by itself,
# SENSECF_DRAIN_BEFORE seconds before the walltime (a background timer sends SIGUSR1 to this
# shell), and also drains on SIGTERM/SIGUSR1 from outside (`qsig -s USR1 JOBID`). The shell
# forwards SIGUSR1 to mpirun, which forwards it to every rank; the sweep exits 75 after saving.
# After SIGTERM (qdel, or the walltime itself) the job is not resubmitted (unless
# SENSECF_REQUEUE_ON_TERM=1); `qsig -s USR2 JOBID` drains without resubmitting.
# On 75 after SIGUSR1 the job is resubmitted: `qsub` (default) submits this script again with
# the same environment, to start after this job ends (-W depend=afterany); `qrerun` requeues
# this job instead, but needs operator/manager rights on most PBS sites.
#
# PBS Pro / OpenPBS: 2 nodes x 4 GPUs, one rank per GPU.
#PBS -N sensecf-sweep
#PBS -l select=2:ncpus=32:ngpus=4:mpiprocs=4
#PBS -l walltime=12:00:00
#PBS -j oe
#PBS -r y
# Torque instead of the select line:
##PBS -l nodes=2:ppn=4:gpus=4

set -uo pipefail

log() { echo "[sensecf-job $(date '+%F %T')] $*"; }

cd "${PBS_O_WORKDIR:-.}" || exit 1
if [[ -z ${SENSECF_BIN:-} ]]; then
  SENSECF_BIN=build/cpu-release/bin/sensecf
  [[ -x build/cuda-release/bin/sensecf ]] && SENSECF_BIN=build/cuda-release/bin/sensecf
fi
SENSECF_CONFIG=${SENSECF_CONFIG:-configs/paper.ini}
SENSECF_RESULTS=${SENSECF_RESULTS:-results/$(basename "$SENSECF_CONFIG" .ini).h5}
SENSECF_DRAIN_BEFORE=${SENSECF_DRAIN_BEFORE:-180}
SENSECF_RESUBMIT=${SENSECF_RESUBMIT:-qsub}
SENSECF_JOB_SCRIPT=${SENSECF_JOB_SCRIPT:-jobs/pbs.sh}
SENSECF_MAX_RESTARTS=${SENSECF_MAX_RESTARTS:-20}
restarts=${SENSECF_RESTART_COUNT:-0}

nodefile=${PBS_NODEFILE:-}
if [[ -n $nodefile && -r $nodefile ]]; then
  ntasks=$(wc -l <"$nodefile")
  hosts=(--hostfile "$nodefile")
else
  ntasks=${SENSECF_NTASKS:-2}
  hosts=()
fi

log "job ${PBS_JOBID:-?} (restart $restarts) on $(sort -u "${nodefile:-/dev/null}" 2>/dev/null | paste -sd " " -): $ntasks ranks"
log "config $SENSECF_CONFIG, results $SENSECF_RESULTS, binary $SENSECF_BIN"
[[ -x $SENSECF_BIN ]] || { log "error: $SENSECF_BIN is not an executable"; exit 2; }
[[ -r $SENSECF_CONFIG ]] || { log "error: cannot read config $SENSECF_CONFIG"; exit 2; }
mkdir -p "$(dirname "$SENSECF_RESULTS")"

export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${NCPUS:-1}}
# Results on NFS (or another file system without POSIX locks): uncomment. Only rank 0 writes.
# export HDF5_USE_FILE_LOCKING=FALSE

# shellcheck disable=SC2206  # SENSECF_ARGS is split on spaces on purpose
sweep=("$SENSECF_BIN" sweep --config "$SENSECF_CONFIG" --results "$SENSECF_RESULTS" ${SENSECF_ARGS:-} "$@")
launch=(mpirun -np "$ntasks" "${hosts[@]}")
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# -x: pass the variables the ranks need on the other nodes.
for v in OMP_NUM_THREADS PATH LD_LIBRARY_PATH HDF5_USE_FILE_LOCKING; do
  [[ -n ${!v:-} ]] && launch+=(-x "$v")
done

# Seconds of walltime left: from qstat (PBS Pro: Resource_List.walltime, resources_used.walltime).
walltime_left() {
  local f limit used
  f=$(qstat -f "${PBS_JOBID:-}" 2>/dev/null) || return 1
  limit=$(sed -n 's/^ *Resource_List.walltime = //p' <<<"$f" | head -n1)
  used=$(sed -n 's/^ *resources_used.walltime = //p' <<<"$f" | head -n1)
  [[ -n $limit ]] || return 1
  to_s() { local IFS=: a; read -ra a <<<"$1"; local s=0 x; for x in "${a[@]}"; do s=$((s * 60 + 10#$x)); done; echo "$s"; }
  echo $(($(to_s "$limit") - $(to_s "${used:-0}")))
}

# --- drain on signal, wait, resubmit on 75 ---------------------------------------------------
launcher_pid=""
timer_pid=""
drain_signal=""
requeue=1
no_requeue_why=""
# shellcheck disable=SC2317  # called from the traps below
drain() {
  # SIGUSR2: drain, no requeue. SIGTERM/SIGINT: scancel/qdel (or the hard limit): no requeue
  # either, unless SENSECF_REQUEUE_ON_TERM=1 (a cancelled job must stay cancelled).
  case $1 in
    USR2) requeue=0 no_requeue_why="SIGUSR2" ;;
    TERM | INT)
      if [[ ${SENSECF_REQUEUE_ON_TERM:-0} != 1 ]]; then requeue=0 no_requeue_why="SIG$1: cancelled"; fi ;;
  esac
  if [[ -n $drain_signal ]]; then
    log "got SIG$1 (already draining since SIG$drain_signal)"
    return
  fi
  drain_signal=$1
  log "got SIG$1: asking the sweep to drain and save (SIGUSR1 to mpirun)"
  if [[ -n $launcher_pid ]]; then kill -USR1 "$launcher_pid" 2>/dev/null || true; fi
}
trap 'drain USR1' USR1
trap 'drain TERM' TERM
trap 'drain USR2' USR2
trap 'drain INT' INT

if left=$(walltime_left) && ((left > SENSECF_DRAIN_BEFORE)); then
  log "walltime left ${left}s: the sweep will be asked to drain in $((left - SENSECF_DRAIN_BEFORE))s"
  (
    trap 'kill "${sleep_pid:-}" 2>/dev/null; exit 0' TERM
    sleep "$((left - SENSECF_DRAIN_BEFORE))" &
    sleep_pid=$!
    wait "$sleep_pid" && kill -USR1 $$
  ) &
  timer_pid=$!
fi

log "running: ${launch[*]} ${sweep[*]}"
"${launch[@]}" "${sweep[@]}" &
launcher_pid=$!
if [[ -n $drain_signal ]]; then kill -USR1 "$launcher_pid" 2>/dev/null || true; fi
while :; do
  wait "$launcher_pid"
  rc=$?
  kill -0 "$launcher_pid" 2>/dev/null || break
done
trap '' USR1 USR2 TERM INT
[[ -n $timer_pid ]] && kill "$timer_pid" 2>/dev/null
log "sweep exited with $rc"
# 138 = killed by our SIGUSR1: it came before the ranks had set up their signal handlers (the
# first seconds of the run). Nothing was running yet and the journal is intact: same as 75.
if ((rc == 128 + 10)) && [[ -n $drain_signal ]]; then
  log "the sweep died of SIGUSR1 while starting up: treated as interrupted (75)"
  rc=75
fi

case $rc in
  0) log "all tasks done" ;;
  3) log "sweep finished, but some tasks failed after retries (rerun with --retry-failed)" ;;
  75)
    if ((requeue == 0)); then
      log "interrupted; not resubmitting ($no_requeue_why). Submit the same job again to resume."
    elif ((restarts >= SENSECF_MAX_RESTARTS)); then
      log "interrupted, but this job has restarted $restarts times (SENSECF_MAX_RESTARTS); not resubmitting"
    else
      case $SENSECF_RESUBMIT in
        qrerun)
          log "interrupted after a graceful drain: qrerun ${PBS_JOBID:-}"
          qrerun "${PBS_JOBID:-}" || log "error: qrerun failed (operator rights?); submit again to resume"
          ;;
        qsub)
          vars="SENSECF_CONFIG=$SENSECF_CONFIG,SENSECF_RESULTS=$SENSECF_RESULTS,SENSECF_BIN=$SENSECF_BIN"
          vars+=",SENSECF_RESTART_COUNT=$((restarts + 1)),SENSECF_RESUBMIT=$SENSECF_RESUBMIT"
          vars+=",SENSECF_JOB_SCRIPT=$SENSECF_JOB_SCRIPT,SENSECF_DRAIN_BEFORE=$SENSECF_DRAIN_BEFORE"
          [[ -n ${SENSECF_ARGS:-} ]] && vars+=",SENSECF_ARGS=$SENSECF_ARGS"
          log "interrupted after a graceful drain: resubmitting $SENSECF_JOB_SCRIPT (restart $((restarts + 1)))"
          qsub -W depend=afterany:"${PBS_JOBID:-}" -v "$vars" "$SENSECF_JOB_SCRIPT" ||
            log "error: qsub failed; submit again to resume"
          ;;
        *) log "interrupted; SENSECF_RESUBMIT=$SENSECF_RESUBMIT: submit again to resume" ;;
      esac
    fi
    ;;
  *) log "error: sweep failed (exit $rc)" ;;
esac
exit "$rc"
