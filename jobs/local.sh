#!/usr/bin/env bash
# Run `sensecf sweep` on this machine under mpirun, with a graceful Ctrl-C.
#
#   jobs/local.sh [-n RANKS] CONFIG RESULTS [more sensecf sweep arguments]
#   jobs/local.sh configs/quickstart.ini results/q.h5
#   jobs/local.sh -n 5 configs/paper.ini results/paper.h5 --sweep.grace 120
#
# RANKS: rank 0 coordinates, ranks 1..RANKS-1 run tasks (one GPU each, local_rank % GPUs).
# Default: 1 + the number of GPUs (nvidia-smi -L), or 3 without GPUs.
# Adds OMPI_ALLOW_RUN_AS_ROOT* when run as root, and --oversubscribe when RANKS exceeds the
# cores. SENSECF_BIN picks the binary (default: build/cuda-release/bin/sensecf if built, else
# build/cpu-release/bin/sensecf); MPIRUN the launcher (default mpirun).
#
# Ctrl-C (SIGINT), SIGTERM or SIGHUP: the sweep is asked to drain (SIGUSR1 to mpirun, which
# forwards it to every rank): no new tasks start, running ones get --sweep.grace seconds
# (default 60) to finish, everything finished is saved, and the exit code is 75. A second
# Ctrl-C aborts at once (finished tasks are still in the journal). Nothing is restarted
# automatically: run the same command again to resume.
#
# Exit code: the sweep's (0 done, 1 error, 2 usage/config error, 3 some tasks failed after
# retries, 75 interrupted after a graceful drain).
set -uo pipefail

usage() {
  sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

ranks=""
while getopts ":n:h" opt; do
  case $opt in
    n) ranks=$OPTARG ;;
    h) usage ;;
    *) echo "local.sh: unknown option -$OPTARG" >&2; usage ;;
  esac
done
shift $((OPTIND - 1))
(($# >= 2)) || usage
config=$1 results=$2
shift 2

here=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z ${SENSECF_BIN:-} ]]; then
  SENSECF_BIN=$here/build/cpu-release/bin/sensecf
  [[ -x $here/build/cuda-release/bin/sensecf ]] && SENSECF_BIN=$here/build/cuda-release/bin/sensecf
fi
[[ -x $SENSECF_BIN ]] || { echo "local.sh: $SENSECF_BIN is not an executable (build first, or set SENSECF_BIN)" >&2; exit 2; }
[[ -r $config ]] || { echo "local.sh: cannot read config $config" >&2; exit 2; }

if [[ -z $ranks ]]; then
  gpus=0
  command -v nvidia-smi >/dev/null && gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
  ranks=$((gpus > 0 ? gpus + 1 : 3))
fi
[[ $ranks =~ ^[1-9][0-9]*$ ]] || { echo "local.sh: -n wants a positive number, not '$ranks'" >&2; exit 2; }

launch=("${MPIRUN:-mpirun}" -np "$ranks")
# Open MPI counts physical cores as slots.
cores=$(lscpu -p=core,socket 2>/dev/null | grep -v '^#' | sort -u | wc -l)
((cores > 0)) || cores=$(nproc)
((ranks > cores)) && launch+=(--oversubscribe)
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

pid=""
drains=0
# shellcheck disable=SC2317  # called from the traps below
drain() {
  drains=$((drains + 1))
  if [[ -z $pid ]]; then
    return  # not started yet: passed on right after the start
  elif ((drains == 1)); then
    echo "local.sh: got SIG$1: asking the sweep to drain and save (Ctrl-C again to abort now)" >&2
    kill -USR1 "$pid" 2>/dev/null || true
  else
    echo "local.sh: got SIG$1 again: aborting (SIGTERM to mpirun)" >&2
    kill -TERM "$pid" 2>/dev/null || true
  fi
}

echo "local.sh: ${launch[*]} $SENSECF_BIN sweep --config $config --results $results $*" >&2
# setsid: mpirun gets its own session, so a Ctrl-C in the terminal reaches only this script
# (mpirun would abort the job on SIGINT); the script turns it into SIGUSR1.
trap 'drain INT' INT
trap 'drain TERM' TERM
trap 'drain HUP' HUP
setsid -w "${launch[@]}" "$SENSECF_BIN" sweep --config "$config" --results "$results" "$@" &
pid=$!
((drains > 0)) && kill -USR1 "$pid" 2>/dev/null
while :; do
  wait "$pid"
  rc=$?
  kill -0 "$pid" 2>/dev/null || break
done
trap - INT TERM HUP
# 138: a rank died of the SIGUSR1 because it came before the sweep had set up its signal
# handlers (the first seconds); nothing was running, the journal is intact: same as 75.
((rc == 128 + 10 && drains > 0)) && rc=75

if ((drains > 1)); then
  echo "local.sh: aborted (exit $rc); finished tasks are in the journal. Run the same command again to resume." >&2
  exit "$rc"
fi
case $rc in
  0) echo "local.sh: all tasks done: $results" >&2 ;;
  3) echo "local.sh: finished, but some tasks failed after retries (rerun with --retry-failed)" >&2 ;;
  75) echo "local.sh: interrupted; everything finished is saved. Run the same command again to resume." >&2 ;;
  *) echo "local.sh: sweep failed (exit $rc)" >&2 ;;
esac
exit "$rc"
