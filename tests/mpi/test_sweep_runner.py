"""The sweep runner under real mpirun jobs, checked through h5py (an independent reader).

Covers: pull-based protocol on 4 ranks, retries and failures, gang tasks,
-np 1, refusing a changed config, kill -9 of the coordinator or of a worker
followed by a resume that ends with exactly the rows of an uninterrupted run,
SIGTERM / SIGUSR1 drain with exit code 75, and a torn journal line.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpi_jobs  # noqa: E402

BIN = os.environ.get("SENSECF_BIN", "build/cpu-release/bin/sensecf")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")
EXIT_TASKS_FAILED = 3
EXIT_INTERRUPTED = 75


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def sweep_cmd(ranks, config, results, *extra):
    cmd = [BIN, "sweep", "--config", config, "--results", results, "--log.level", "info", *extra]
    if ranks is None:
        return cmd
    return ["mpirun", "-np", str(ranks), "--oversubscribe"] + cmd


def run(ranks, config, results, *extra, timeout=180):
    p = subprocess.run(sweep_cmd(ranks, config, results, *extra), env=ENV, capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def table(path, name):
    with h5py.File(path, "r") as f:
        data = f[name][:]
    return data


def strs(column):
    return [x.decode() for x in column]


def done_rows(path):
    t = table(path, "tasks")
    return t[t["status"] == b"done"]


def rank_pid(rank, results):
    return mpi_jobs.rank_pid(rank, "sweep", results)


def journal_lines(results):
    try:
        with open(results + ".journal") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def interrupted_run(ranks, config, results, lines, victim, sig=signal.SIGKILL):
    """Starts a sweep, sends `sig` to rank `victim` once the journal holds `lines`
    lines; returns (exit code, output) of the interrupted job."""
    proc = subprocess.Popen(sweep_cmd(ranks, config, results), env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    kill_after(proc, results, lines, victim, sig)
    out, _ = proc.communicate(timeout=120)
    return proc.returncode, out


def kill_after(proc, results, lines, victim, sig=signal.SIGKILL, timeout=120):
    """Waits until the journal holds `lines` lines, then sends `sig` to `victim` (a rank)."""
    start = time.time()
    while journal_lines(results) < lines:
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended before {lines} journal lines (rc={proc.returncode})")
        if time.time() - start > timeout:
            raise AssertionError("timed out waiting for the journal to grow")
        time.sleep(0.02)
    pid = rank_pid(victim, results)
    assert pid is not None, f"could not find rank {victim}"
    os.kill(pid, sig)


PROBE = """[sweep]
plan = probe
probe_tasks = {n}
probe_ms = {ms}
probe_fail = {fail}
probe_flaky = {flaky}
probe_gang = {gang}
"""


class SweepRunnerTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def probe_config(self, name="probe.ini", n=60, ms=10, fail="", flaky="", gang=""):
        return write(os.path.join(self.dir, name), PROBE.format(n=n, ms=ms, fail=fail, flaky=flaky, gang=gang))

    def test_protocol_retries_failures_and_gangs_on_4_ranks(self):
        config = self.probe_config(n=60, ms=10, fail="3", flaky="5", gang="7, 8")
        results = os.path.join(self.dir, "r.h5")
        rc, log = run(4, config, results)
        self.assertEqual(rc, EXIT_TASKS_FAILED, log)
        self.assertIn("probe task 3 fails by request", log)
        t = table(results, "tasks")
        keys = strs(t["key"])
        status = strs(t["status"])
        labels = strs(t["label"])
        # 59 tasks done once each; #3 failed max_attempts (3) times; #5 failed once, then done
        self.assertEqual(len(set(k for k, s in zip(keys, status) if s == "done")), 59)
        self.assertEqual(sum(s == "done" for s in status), 59)
        self.assertEqual([a for l, a in zip(labels, t["attempt"]) if l == "probe #3"], [1, 2, 3])
        self.assertEqual(sorted((int(a), s) for l, a, s in zip(labels, t["attempt"], status) if l == "probe #5"),
                         [(1, "failed"), (2, "done")])
        # work was pulled by every worker, never by the coordinator
        self.assertEqual(set(t["rank"]), {1, 2, 3})
        # gang tasks: every member contributed to the all-reduce (loss = gang size)
        train = table(results, "metrics/train")
        gang = {int(s): l for s, l in zip(train["step"], train["loss"])}
        self.assertEqual(gang[7], 2.0)
        self.assertEqual(gang[8], 2.0)
        self.assertEqual(gang[0], 1.0)
        with h5py.File(results, "r") as f:
            self.assertEqual(f.attrs["format_version"].decode() if isinstance(f.attrs["format_version"], bytes)
                             else f.attrs["format_version"], "1")
            self.assertIn("probe_tasks = 60", str(f.attrs["config"]))
            self.assertEqual(int(f.attrs["mpi_size"]), 4)

    def test_single_rank_runs_everything_on_rank_0(self):
        config = self.probe_config(n=20, ms=0, gang="4")
        results = os.path.join(self.dir, "r.h5")
        rc, log = run(None, config, results)
        self.assertEqual(rc, 0, log)
        t = table(results, "tasks")
        self.assertEqual(len(t), 20)
        self.assertEqual(set(t["rank"]), {0})

    def test_changed_config_is_refused_naming_the_keys(self):
        config = self.probe_config(n=10, ms=0)
        results = os.path.join(self.dir, "r.h5")
        rc, log = run(2, config, results)
        self.assertEqual(rc, 0, log)
        other = self.probe_config("other.ini", n=12, ms=1)
        rc, log = run(2, other, results)
        self.assertEqual(rc, 2, log)
        self.assertIn("sweep.probe_tasks: 10 -> 12", log)
        self.assertIn("sweep.probe_ms: 0 -> 1", log)
        self.assertEqual(len(table(results, "tasks")), 10)  # untouched

    def test_kill_9_of_the_coordinator_then_resume_equals_an_uninterrupted_run(self):
        config = self.probe_config(n=150, ms=15, flaky="20")
        reference = os.path.join(self.dir, "ref.h5")
        rc, log = run(4, config, reference)
        self.assertEqual(rc, 0, log)
        results = os.path.join(self.dir, "r.h5")
        rc, _ = interrupted_run(4, config, results, 40, victim=0)
        self.assertNotEqual(rc, 0)
        survived = journal_lines(results) - 1
        self.assertGreater(survived, 30)
        self.assertLess(survived, 151)
        rc, log = run(4, config, results)
        self.assertEqual(rc, 0, log)
        self.assertIn("resuming", log)
        self.assert_same_results(reference, results)

    def test_kill_9_of_a_worker_then_resume(self):
        config = self.probe_config(n=120, ms=15)
        reference = os.path.join(self.dir, "ref.h5")
        self.assertEqual(run(3, config, reference)[0], 0)
        results = os.path.join(self.dir, "r.h5")
        rc, _ = interrupted_run(3, config, results, 30, victim=2)
        self.assertNotEqual(rc, 0)
        rc, log = run(3, config, results)
        self.assertEqual(rc, 0, log)
        self.assert_same_results(reference, results)

    def test_sigterm_drains_exits_75_and_resumes(self):
        config = self.probe_config(n=200, ms=30)
        results = os.path.join(self.dir, "r.h5")
        rc, out = interrupted_run(3, config, results, 20, victim=0, sig=signal.SIGTERM)
        self.assertEqual(rc, EXIT_INTERRUPTED, out)
        self.assertIn("signal 15 received", out)
        first = done_rows(results)
        self.assertGreater(len(first), 10)
        self.assertLess(len(first), 200)
        rc, log = run(3, config, results)
        self.assertEqual(rc, 0, log)
        done = done_rows(results)
        self.assertEqual(len(done), 200)
        self.assertEqual(len(set(done["key"])), 200)

    def signal_mpirun(self, config, results, sig):
        """Runs a 3-rank sweep and sends `sig` to mpirun itself after 20 journal lines;
        returns (exit code, output)."""
        proc = subprocess.Popen(sweep_cmd(3, config, results), env=ENV, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        while journal_lines(results) < 20:
            time.sleep(0.02)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
        return proc.returncode, out

    def test_sigusr1_to_mpirun_is_forwarded_and_drains(self):
        config = self.probe_config(n=200, ms=30)
        results = os.path.join(self.dir, "r.h5")
        rc, out = self.signal_mpirun(config, results, signal.SIGUSR1)
        self.assertEqual(rc, EXIT_INTERRUPTED, out)
        self.assertIn("signal 10 received", out)

    def test_sigterm_to_mpirun_saves_everything_and_says_why_the_exit_code_is_1(self):
        # Open MPI aborts the job on a SIGTERM of mpirun's own and exits 1 whatever the
        # ranks return; the ranks still drain and save, and rank 0 says so.
        config = self.probe_config(n=200, ms=30)
        results = os.path.join(self.dir, "r.h5")
        rc, out = self.signal_mpirun(config, results, signal.SIGTERM)
        self.assertEqual(rc, 1, out)
        self.assertIn("signal 15 received", out)
        self.assertIn("if that signal went to mpirun, mpirun exits 1, not 75", out)
        rc, log = run(3, config, results)
        self.assertEqual(rc, 0, log)
        done = done_rows(results)
        self.assertEqual(len(done), 200)
        self.assertEqual(len(set(done["key"])), 200)

    def test_a_second_sweep_on_the_same_file_is_refused(self):
        config = self.probe_config(n=100, ms=30)
        results = os.path.join(self.dir, "r.h5")
        proc = subprocess.Popen(sweep_cmd(2, config, results), env=ENV, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        while journal_lines(results) < 5:
            time.sleep(0.02)
        rc, log = run(2, config, results)
        self.assertEqual(rc, 2, log)
        self.assertIn("another sweep is running", log)
        out, _ = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 0, out)
        done = done_rows(results)
        self.assertEqual(len(done), 100)
        self.assertEqual(len(set(done["key"])), 100)

    def test_torn_journal_line_is_dropped_and_rerun(self):
        config = self.probe_config(n=30, ms=0)
        results = os.path.join(self.dir, "r.h5")
        self.assertEqual(run(2, config, results)[0], 0)
        with open(results + ".journal") as f:
            lines = f.readlines()
        # a crash in the middle of writing the last line
        with open(results + ".journal", "w") as f:
            f.writelines(lines[:-1])
            f.write(lines[-1][: len(lines[-1]) // 2])
        rc, log = run(2, config, results)
        self.assertEqual(rc, 0, log)
        self.assertIn("is incomplete", log)
        done = done_rows(results)
        self.assertEqual(len(done), 30)
        self.assertEqual(len(set(done["key"])), 30)

    def test_damaged_journal_is_an_error_naming_the_line(self):
        config = self.probe_config(n=10, ms=0)
        results = os.path.join(self.dir, "r.h5")
        self.assertEqual(run(2, config, results)[0], 0)
        with open(results + ".journal") as f:
            lines = f.readlines()
        lines[3] = "{not json\n"
        with open(results + ".journal", "w") as f:
            f.writelines(lines)
        rc, log = run(2, config, results)
        self.assertEqual(rc, 1, log)
        self.assertIn("line 4 is not valid JSON", log)

    def assert_same_results(self, reference, results):
        a, b = done_rows(reference), done_rows(results)
        self.assertEqual(sorted(a["key"]), sorted(b["key"]))
        self.assertEqual(len(b["key"]), len(set(b["key"])), "a task was recorded as done twice")
        ta, tb = table(reference, "metrics/train"), table(results, "metrics/train")
        self.assertEqual(sorted(ta["key"]), sorted(tb["key"]))


STUDY = """[sweep]
methods = nice, dice-random
scenarios = positive
ratios = 0.5, 1.0
seeds = 3
queries = 40
fig1_models = svm
fig1_reductions = 0.5
[data]
source = synth
[synth]
participants = 60
"""


class StudyResumeTest(unittest.TestCase):
    """kill -9 in the middle of a real (tiny) study: the resumed file equals an uninterrupted one, value for value."""

    def test_resume_gives_identical_metrics(self):
        with tempfile.TemporaryDirectory() as d:
            config = write(os.path.join(d, "study.ini"), STUDY)
            reference = os.path.join(d, "ref.h5")
            rc, log = run(3, config, reference)
            self.assertEqual(rc, 0, log)
            results = os.path.join(d, "r.h5")
            interrupted_run(3, config, results, 6, victim=0)
            rc, log = run(3, config, results)
            self.assertEqual(rc, 0, log)
            for name, sort_key in (("metrics/clf", ["key"]), ("metrics/cf", ["key", "factual_class"])):
                a, b = table(reference, name), table(results, name)
                a, b = np.sort(a, order=sort_key), np.sort(b, order=sort_key)
                self.assertEqual(len(a), len(b), name)
                for field in a.dtype.names:
                    if field == "seconds_per_query":  # wall time, not a result
                        continue
                    np.testing.assert_array_equal(a[field], b[field], err_msg=f"{name}.{field}")
            with h5py.File(reference, "r") as fa, h5py.File(results, "r") as fb:
                self.assertEqual(sorted(fa["counterfactuals"]), sorted(fb["counterfactuals"]))
                for key in fa["counterfactuals"]:
                    np.testing.assert_array_equal(fa[f"counterfactuals/{key}/counterfactual"][:],
                                                  fb[f"counterfactuals/{key}/counterfactual"][:])
                    self.assertIn("steps_mean", fa[f"counterfactuals/{key}"].attrs["features"].decode()
                                  if isinstance(fa[f"counterfactuals/{key}"].attrs["features"], bytes)
                                  else fa[f"counterfactuals/{key}"].attrs["features"])
            self.check_compare_results(d, reference, results)
            self.check_explain_reads_sweep_model(d, reference, clf_rows=table(reference, "metrics/clf"))
            clf = table(results, "metrics/clf")
            kinds = sorted(set(strs(clf["kind"])))
            self.assertEqual(kinds, ["augment", "fig1", "train_clf"])
            aug = clf[clf["kind"] == b"augment"]
            self.assertTrue(np.all(aug["n_added"] > 0))
            self.assertTrue(np.all(aug["n_added"] <= aug["n_wanted"]))

    def check_compare_results(self, d, reference, results):
        """scripts/compare-results (the refactor proof) passes two equal files and fails on one changed value."""
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "compare-results")

        def compare(a, b):
            p = subprocess.run([sys.executable, script, a, b], capture_output=True, text=True, timeout=120)
            return p.returncode, p.stdout + p.stderr

        rc, out = compare(reference, results)
        self.assertEqual(rc, 0, out)
        self.assertIn("identical", out)
        changed = os.path.join(d, "changed.h5")
        shutil.copy(results, changed)
        with h5py.File(changed, "r+") as f:
            rows = f["metrics/cf"][()]
            i = int(np.flatnonzero(np.isfinite(rows["distance"]))[0])
            rows["distance"][i] = np.nextafter(rows["distance"][i], np.inf)  # one ulp
            f["metrics/cf"][...] = rows
        rc, out = compare(reference, changed)
        self.assertEqual(rc, 1, out)
        self.assertIn("metrics/cf: only after", out)
        shutil.copy(results, changed)
        with h5py.File(changed, "r+") as f:
            key = sorted(f["counterfactuals"])[0]
            ds = f[f"counterfactuals/{key}/factual"]
            values = ds[()]
            values.flat[0] += 1.0
            ds[...] = values
        rc, out = compare(reference, changed)
        self.assertEqual(rc, 1, out)
        self.assertIn(f"/counterfactuals/{key}/factual: 1 values differ", out)

    def check_explain_reads_sweep_model(self, d, results, clf_rows):
        """A classifier trained by the sweep is a complete artefact: `explain` and `evaluate-cf` find the
        cohort, the split and the scenario in it, with no data flag repeated."""
        row = clf_rows[clf_rows["kind"] == b"train_clf"][0]
        model = os.path.join(results[:-len(".h5")] + ".work", "tasks", row["key"].decode(), "clf")
        self.assertTrue(os.path.isdir(model), model)
        out = os.path.join(d, "cfs.csv")
        p = subprocess.run([BIN, "explain", "--clf", model, "--method", "nice", "--limit", "5", "--out", out,
                            "--json"], env=ENV, capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("data settings saved with the model", p.stderr + p.stdout)
        with open(out) as f:
            lines = f.read().splitlines()
        self.assertGreaterEqual(len(lines), 6, lines)  # header + at least one line per query
        self.assertEqual(len({line.split(",")[0] for line in lines[1:]}), 5)
        # The training rows are re-derived from the saved split: their count matches the sweep's.
        p = subprocess.run([BIN, "evaluate-cf", "--clf", model, "--cfs", out, "--json"], env=ENV,
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('"method"', p.stdout)
        # A flag still wins over the saved setting, and a wrong one is reported, not silently used.
        p = subprocess.run([BIN, "explain", "--clf", model, "--label", "no_such_column", "--out", out], env=ENV,
                           capture_output=True, text=True, timeout=120)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no_such_column", p.stderr + p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
