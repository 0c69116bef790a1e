"""`sensecf lm finetune` under real mpirun jobs: data parallel and interrupted.

- 2 ranks, each with half of every optimiser step's micro-batches, compute the
  run 1 rank computes with all of them: the same losses, evaluation losses and
  gradient norms to float rounding, and the same adapter (dropout 0: each rank
  draws its own dropout masks).
- On a machine with 2 or more GPUs (skipped elsewhere): 2 ranks on 2 GPUs sum
  their gradients over NCCL in device memory and compute what 1 GPU computes.
- SIGUSR1 to one rank of a 2-rank run: both ranks stop after the same step,
  rank 0 writes the checkpoint, the job exits 75; the same command then resumes
  and ends with exactly the adapter and curve of an uninterrupted 2-rank run.
Files are read with the project's own reference reader (test_llm_reference.py).
"""
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpi_jobs  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from test_llm_reference import read_safetensors  # noqa: E402

BIN = os.environ.get("SENSECF_BIN", "build/cpu-release/bin/sensecf")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")
EXIT_INTERRUPTED = 75


def finetune_cmd(ranks, model, data, out, *extra):
    cmd = [BIN, "lm", "finetune", "--model", model, "--data", data, "--out", out, "--dropout", "0",
           "--batch-size", "3", "--grad-accum", "4", "--eval-fraction", "0.1", "--log.level", "info", *extra]
    return ["mpirun", "-np", str(ranks), "--oversubscribe"] + cmd if ranks > 1 else cmd


def run(cmd):
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout + p.stderr


def curve(out):
    with open(os.path.join(out, "train_curve.csv")) as f:
        return list(csv.DictReader(f))


def adapter(out):
    return read_safetensors(os.path.join(out, "adapter_model.safetensors"))


def rank_pid(rank, out):
    return mpi_jobs.rank_pid(rank, "finetune", out)


class FinetuneMpiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        d = cls.dir.name
        cls.model = os.path.join(d, "tiny-llama")
        subprocess.run([BIN, "lm", "init-tiny", "--family", "llama", "--out", cls.model, "--log.level", "warn"],
                       check=True, env=ENV)
        cls.data = os.path.join(d, "train.jsonl")
        with open(cls.data, "w") as f:
            for i in range(40):
                f.write(json.dumps({"prompt": f"steps {1000 + 37 * i}, glucose {90 + 3 * i}. change:",
                                    "completion": f" steps {5000 + 10 * i}"}) + "\n")

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def out(self, name):
        return os.path.join(self.dir.name, name)

    def test_two_ranks_compute_what_one_rank_computes(self):
        rc, log = run(finetune_cmd(1, self.model, self.data, self.out("one"), "--max-steps", "5", "--eval-every", "2"))
        self.assertEqual(rc, 0, log)
        rc, log = run(finetune_cmd(2, self.model, self.data, self.out("two"), "--max-steps", "5", "--eval-every", "2"))
        self.assertEqual(rc, 0, log)
        self.assertIn("MPI, 2 ranks", log)
        one, two = curve(self.out("one")), curve(self.out("two"))
        self.assertEqual(len(one), 5)
        self.assertEqual(len(two), 5)
        for a, b in zip(one, two):
            self.assertEqual(a["tokens"], b["tokens"])
            for key in ("loss", "grad_norm", "lr"):
                x, y = float(a[key]), float(b[key])
                self.assertLess(abs(x - y), 1e-5 * abs(x), f"step {a['step']} {key}: {x} vs {y}")
            self.assertEqual(a["eval_loss"] == "", b["eval_loss"] == "")
            if a["eval_loss"]:
                self.assertLess(abs(float(a["eval_loss"]) - float(b["eval_loss"])), 1e-5 * float(a["eval_loss"]))
        wa, wb = adapter(self.out("one")), adapter(self.out("two"))
        self.assertEqual(sorted(wa), sorted(wb))
        lr = 2e-4
        worst = max(np.abs(wa[k] - wb[k]).max() for k in wa) / lr
        self.assertLess(worst, 1e-2, "adapters differ by more than float rounding can explain")
        moved = max(np.abs(wa[k]).max() for k in wa if "lora_B" in k)
        self.assertGreater(moved, 0.0, "B never left zero: nothing was trained")

    def test_two_gpus_over_nccl_compute_what_one_gpu_computes(self):
        try:
            gpus = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.count("GPU ")
        except OSError:
            gpus = 0
        if gpus < 2:
            self.skipTest(f"{gpus} GPU(s) visible: NCCL data parallelism needs 2")
        args = ("--max-steps", "5", "--eval-every", "2", "--lm.dtype", "float32")
        rc, log = run(finetune_cmd(1, self.model, self.data, self.out("gpu-one"), "--lm.device", "cuda:0", *args))
        self.assertEqual(rc, 0, log)
        rc, log = run(finetune_cmd(2, self.model, self.data, self.out("gpu-two"), "--lm.device", "cuda", *args))
        self.assertEqual(rc, 0, log)
        self.assertIn("NCCL on CUDA device 0, 2 ranks", log)
        for a, b in zip(curve(self.out("gpu-one")), curve(self.out("gpu-two"))):
            for key in ("loss", "grad_norm"):
                x, y = float(a[key]), float(b[key])
                self.assertLess(abs(x - y), 1e-4 * abs(x), f"step {a['step']} {key}: {x} vs {y}")

    def test_a_signal_stops_every_rank_and_the_rerun_resumes_exactly(self):
        args = ("--max-steps", "300", "--save-every", "50", "--eval-every", "100")
        rc, log = run(finetune_cmd(2, self.model, self.data, self.out("whole"), *args))
        self.assertEqual(rc, 0, log)
        out = self.out("split")
        proc = subprocess.Popen(finetune_cmd(2, self.model, self.data, out, *args), env=ENV, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        state = os.path.join(out, "checkpoint", "trainer_state.json")
        start = time.time()
        while not os.path.exists(state):
            self.assertIsNone(proc.poll(), "the run ended before its first checkpoint")
            self.assertLess(time.time() - start, 120, "no checkpoint after 120 s")
            time.sleep(0.01)
        pid = rank_pid(1, out)
        self.assertIsNotNone(pid, "could not find rank 1")
        os.kill(pid, signal.SIGUSR1)
        log, _ = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, EXIT_INTERRUPTED, log)
        with open(state) as f:
            stopped_at = json.load(f)["step"]
        self.assertLess(stopped_at, 300)
        self.assertIn("stopped at step", log)
        rc, log = run(finetune_cmd(2, self.model, self.data, out, *args))
        self.assertEqual(rc, 0, log)
        self.assertIn(f"resuming from '{out}/checkpoint' at step {stopped_at}/300", log)
        wa, wb = adapter(self.out("whole")), adapter(out)
        for k in wa:
            np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)
        for a, b in zip(curve(self.out("whole")), curve(out)):
            for key in ("step", "loss", "eval_loss", "grad_norm", "lr", "tokens"):
                self.assertEqual(a[key], b[key], f"step {a['step']} {key}")


SWEEP = """[sweep]
methods = nice
scenarios =
ratios = 0.5
seeds = 1
queries = 10
fig1_reductions =
llm_models = tiny={model}
[finetune]
max_steps = 40
grad_accum = 1
batch_size = 1
# the SenseCF prompt in the tiny tokenizer's bytes is ~1,300 tokens
max_length = 2048
save_every = 5
eval_every = 20
[data]
source = synth
[synth]
participants = 40
"""


def h5_finetune(results):
    import h5py
    with h5py.File(results, "r") as f:
        train = f["metrics/train"][()]
        # NaN (no evaluation at that step) as None, so that equal rows compare equal.
        rows = sorted(tuple(None if isinstance(v, float) and v != v else v for v in r.tolist())
                      for r in train[train["kind"] == b"finetune"])
        tasks = f["tasks"][()]
        key = [t["key"].decode() for t in tasks if t["kind"] == b"finetune" and t["status"] == b"done"]
        assert len(key) == 1, key
        attrs = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f[f"artifacts/{key[0]}"].attrs.items()}
    return rows, attrs


class SweepFinetuneTest(unittest.TestCase):
    """A sweep's finetune task, killed with -9 mid-training, resumes from its checkpoint when the sweep is rerun
    and ends with the curve and the adapter of an uninterrupted sweep."""

    def test_kill_9_during_finetune_resumes_from_the_checkpoint(self):
        with tempfile.TemporaryDirectory() as d:
            model = os.path.join(d, "tiny-llama")
            subprocess.run([BIN, "lm", "init-tiny", "--family", "llama", "--out", model, "--log.level", "warn"],
                           check=True, env=ENV)
            config = os.path.join(d, "sweep.ini")
            with open(config, "w") as f:
                f.write(SWEEP.format(model=model))

            def sweep(results):
                return ["mpirun", "-np", "2", "--oversubscribe", BIN, "sweep", "--config", config, "--results",
                        results, "--log.level", "info"]

            reference = os.path.join(d, "ref.h5")
            rc, log = run(sweep(reference))
            self.assertEqual(rc, 0, log)
            ref_rows, ref_attrs = h5_finetune(reference)
            self.assertEqual(len(ref_rows), 40)
            self.assertEqual(ref_attrs["resumed_from_step"], "0")

            results = os.path.join(d, "r.h5")
            proc = subprocess.Popen(sweep(results), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True)
            work = os.path.join(d, "r.work", "tasks")
            start = time.time()
            state = None
            while state is None:
                self.assertIsNone(proc.poll(), "the sweep ended before the fine-tune's first checkpoint")
                self.assertLess(time.time() - start, 120)
                if os.path.isdir(work):
                    for key in os.listdir(work):
                        path = os.path.join(work, key, "adapter", "checkpoint", "trainer_state.json")
                        if os.path.exists(path):
                            state = path
                time.sleep(0.005)
            pid = mpi_jobs.rank_pid(1, "sweep", results)
            self.assertIsNotNone(pid)
            os.kill(pid, signal.SIGKILL)
            proc.communicate(timeout=120)
            self.assertNotEqual(proc.returncode, 0)

            rc, log = run(sweep(results))
            self.assertEqual(rc, 0, log)
            rows, attrs = h5_finetune(results)
            self.assertGreater(int(attrs["resumed_from_step"]), 0, "the fine-tune started again from step 0")
            self.assertEqual(rows, ref_rows)
            self.assertEqual(attrs["adapter_fnv1a"], ref_attrs["adapter_fnv1a"])
            self.assertTrue(os.path.exists(os.path.join(attrs["adapter"], "adapter_model.safetensors")))
            # The report draws the curve: one CSV row per step, the held-out loss at the evaluation steps.
            report = os.path.join(d, "report")
            p = subprocess.run([BIN, "report", "--results", results, "--out", report, "--log.level", "warn"], env=ENV,
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            with open(os.path.join(report, "finetune.csv")) as f:
                curve_rows = list(csv.DictReader(f))
            self.assertEqual(len(curve_rows), 40)
            self.assertEqual({r["model"] for r in curve_rows}, {"tiny"})
            self.assertEqual([r["step"] for r in curve_rows if r["val_loss"]], ["20", "40"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
