"""The SenseCF LLM method in a real mpirun sweep, killed with -9 while it generates.

A small study with an @tiny model: the sweep pretrains it (pretrain_lm), fine-tunes
it on the split's training rows (finetune) and asks it for counterfactuals in the
zero-shot and fine-tuned modes (generate), then augments with them. The results
file, read with h5py, holds the LLM rows with their parse rate and every raw answer.
A second sweep, killed with SIGKILL on the worker that is generating LLM CFs and
then rerun, ends with exactly the LLM results of the uninterrupted one.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpi_jobs  # noqa: E402

BIN = os.environ.get("SENSECF_BIN", "build/cpu-release/bin/sensecf")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")

SWEEP = """[sweep]
methods = nice, llm:tiny:zero-shot, llm:tiny:fine-tuned
scenarios = positive
ratios = 0.5
seeds = 1
queries = 12
fig1_reductions =
llm_models = tiny=@tiny
[pretrain]
max_steps = 15
merges = 300
[finetune]
max_steps = 8
batch_size = 4
grad_accum = 1
eval_every = 0
save_every = 0
max_length = 1024
[cf]
llm_batch_size = 2
[data]
source = synth
[synth]
participants = 40
"""


def sweep_cmd(config, results):
    return ["mpirun", "-np", "3", "--oversubscribe", BIN, "sweep", "--config", config, "--results", results,
            "--log.level", "info", "--log.all_ranks", "true"]


def llm_results(results):
    """The LLM methods' /metrics/cf rows (timing left out) and CF sets (answers, CFs), by task key."""
    import h5py
    import numpy as np
    with h5py.File(results, "r") as f:
        cf = f["metrics/cf"][()]
        names = [n for n in cf.dtype.names if n != "seconds_per_query"]
        def value(v):
            v = v.item() if hasattr(v, "item") else v
            return None if isinstance(v, float) and v != v else v  # NaN as None: equal rows compare equal
        rows = sorted((tuple(value(r[n]) for n in names) for r in cf if r["method"].startswith(b"llm:")),
                      key=repr)
        sets = {}
        for key, g in f["counterfactuals"].items():
            method = g.attrs["method"]
            method = method.decode() if isinstance(method, bytes) else method
            if method.startswith("llm:"):
                sets[key] = (method, [a.decode() if isinstance(a, bytes) else a for a in g["answer"][()]],
                             np.nan_to_num(g["counterfactual"][()], nan=-1.0).tolist())
        tasks = {t["kind"].decode(): 0 for t in f["tasks"][()]}
        for t in f["tasks"][()]:
            tasks[t["kind"].decode()] += t["status"] == b"done"
    return names, rows, sets, tasks


class LlmSweepTest(unittest.TestCase):
    def test_llm_rows_and_kill_9_during_generation(self):
        with tempfile.TemporaryDirectory() as d:
            config = os.path.join(d, "sweep.ini")
            with open(config, "w") as f:
                f.write(SWEEP)
            reference = os.path.join(d, "ref.h5")
            p = subprocess.run(sweep_cmd(config, reference), env=ENV, capture_output=True, text=True, timeout=600)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            names, rows, sets, tasks = llm_results(reference)
            self.assertEqual(tasks["pretrain_lm"], 1)
            self.assertEqual(tasks["finetune"], 2)  # full and positive
            methods = {r[names.index("method")] for r in rows}
            self.assertEqual(methods, {b"llm:tiny:zero-shot", b"llm:tiny:fine-tuned"})
            for r in rows:
                row = dict(zip(names, r))
                if row["n_queries"] == 0:
                    continue  # a factual class without queries (metrics NaN)
                # Constrained decoding: every answer parses, every query has a CF.
                self.assertEqual(row["parse_rate"], 1.0, row)
                self.assertEqual(row["coverage"], 1.0, row)
                self.assertLessEqual(row["validity"], 1.0)
                self.assertEqual(row["violations"], 0.0, "constrained answers copy the immutables")
            self.assertEqual(len(sets), 4)  # 2 methods x (table3 + augment)
            for method, answers, _ in sets.values():
                for a in answers:  # well-formed by construction (leading whitespace allowed)
                    self.assertTrue(a.lstrip(" \n").startswith("<new>\n") and a.endswith("</new>"), (method, a))

            # Killed while a worker generates LLM CFs, then resumed.
            results = os.path.join(d, "r.h5")
            proc = subprocess.Popen(sweep_cmd(config, results), env=ENV, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            start = time.time()
            killed = False
            for line in proc.stdout:
                self.assertLess(time.time() - start, 600)
                if "llm: loaded" in line and "[rank 0/" not in line:
                    rank = int(line.split("[rank ")[1].split("/")[0])
                    pid = mpi_jobs.rank_pid(rank, "sweep", results)
                    self.assertIsNotNone(pid)
                    os.kill(pid, signal.SIGKILL)
                    killed = True
                    break
            self.assertTrue(killed, "no worker started generating with the LLM")
            proc.communicate(timeout=120)
            self.assertNotEqual(proc.returncode, 0)
            p = subprocess.run(sweep_cmd(config, results), env=ENV, capture_output=True, text=True, timeout=600)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            _, rows2, sets2, _ = llm_results(results)
            self.assertEqual(rows2, rows)
            self.assertEqual(sets2, sets)


if __name__ == "__main__":
    unittest.main(verbosity=2)
