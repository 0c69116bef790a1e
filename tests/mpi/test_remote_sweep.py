"""Remote LLM methods in a real mpirun sweep against a real OpenAI-compatible server on loopback.

The server is the openai_test_server process (tests/support/openai_server_main.cpp): it checks the
bearer key, logs one line `<sha256 of body> <status>` per chat request and answers the SenseCF
prompt with a CF. The sweep names it in sweep.llm_models (gpt-fake=fake-model@http://127.0.0.1:PORT/v1)
and asks it for zero-shot and few-shot CFs; every answer lands in <run>.work/llm-cache/<2 hex>/<sha256>.json.
Checked through h5py and the server's log, independently of sensecf:
  - a full run: /metrics/usage counts what the server saw; a finished study asks nothing again; a new
    results file on the same cache asks nothing; an offline rebuild without the server gives the same CFs
  - kill -9 of the whole job while it generates, then resume: no answer already cached is asked again,
    and every answer the server gave is in the cache
  - a wrong key: the remote tasks fail with HTTP 401 and a hint naming OPENAI_API_KEY; the rest goes on
  - the key itself is written nowhere (results, work dirs, cache, logs)
"""
import os
import re
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
SERVER = os.environ.get("SENSECF_OPENAI_SERVER", "build/cpu-release/tests/openai_test_server")
KEY = "sk-test-SENSECF-secret-7f3a"
WRONG_KEY = "sk-test-WRONG-key-0c1d"
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1", OPENAI_API_KEY=KEY)
EXIT_TASKS_FAILED = 3
REMOTE_METHODS = ("llm:gpt-fake:zero-shot", "llm:gpt-fake:few-shot")
CACHE_NAME = re.compile(r"^[0-9a-f]{64}\.json$")

# Two splits (full, positive) x 3 methods x (table3 or augment) generate tasks, one augment per method.
SWEEP = """[sweep]
methods = nice, llm:gpt-fake:zero-shot, llm:gpt-fake:few-shot
augment_methods = nice, llm:gpt-fake:zero-shot, llm:gpt-fake:few-shot
scenarios = positive
ratios = 0.5
seeds = 1
queries = 30
fig1_reductions =
llm_models = gpt-fake=fake-model@http://127.0.0.1:{port}/v1
[lm]
max_concurrency = 2
[data]
source = synth
[synth]
participants = 40
"""
TASKS_BY_KIND = {"prepare": 2, "train_clf": 2, "generate": 6, "augment": 3}


class FakeServer:
    """openai_test_server on an ephemeral loopback port, with its request log."""

    def __init__(self, directory, *flags):
        self.log = os.path.join(directory, "server-requests.log")
        port_file = os.path.join(directory, "server.port")
        self.out = open(os.path.join(directory, "server.out"), "w")
        self.proc = subprocess.Popen([SERVER, "--port-file", port_file, "--log", self.log, "--api-key", KEY,
                                      "--model", "fake-model", *flags], stdout=self.out, stderr=subprocess.STDOUT)
        start = time.time()
        while not os.path.exists(port_file):
            if self.proc.poll() is not None:
                raise AssertionError(f"openai_test_server exited with {self.proc.returncode} before listening")
            if time.time() - start > 30:
                raise AssertionError("openai_test_server wrote no port file in 30 s")
            time.sleep(0.01)
        with open(port_file) as f:
            self.port = int(f.read())

    def lines(self):
        """The request log: [(sha256, status)] in arrival order."""
        try:
            with open(self.log) as f:
                return [tuple(line.split()) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.out.close()


def sweep_cmd(ranks, config, results, *extra):
    return ["mpirun", "-np", str(ranks), "--oversubscribe", BIN, "sweep", "--config", config, "--results", results,
            "--log.level", "info", "--log.all_ranks", "true", *extra]


def run_sweep(ranks, config, results, *extra, env=ENV, timeout=180):
    """Runs a sweep to its end; its output is kept as <results>.<n>.out (the key check reads it too)."""
    p = subprocess.run(sweep_cmd(ranks, config, results, *extra), env=env, capture_output=True, text=True,
                       timeout=timeout)
    n = 1
    while os.path.exists(f"{results}.{n}.out"):
        n += 1
    with open(f"{results}.{n}.out", "w") as f:
        f.write(p.stdout + p.stderr)
    return p.returncode, p.stdout + p.stderr


def cache_files(cache):
    """The cached answers: the sha256 stems of <cache>/<2 hex>/<sha256>.json (temporaries left out)."""
    stems = set()
    if not os.path.isdir(cache):
        return stems
    for sub in os.listdir(cache):
        for name in os.listdir(os.path.join(cache, sub)):
            if CACHE_NAME.match(name):
                assert name.startswith(sub), (sub, name)
                stems.add(name[:-len(".json")])
    return stems


def usage_rows(results):
    with h5py.File(results, "r") as f:
        if "usage" not in f["metrics"]:
            return []
        rows = f["metrics/usage"][()]
    return [{n: (r[n].decode() if isinstance(r[n], bytes) else r[n].item()) for n in rows.dtype.names} for r in rows]


def task_rows(results):
    with h5py.File(results, "r") as f:
        rows = f["tasks"][()]
    return [{n: (r[n].decode() if isinstance(r[n], bytes) else r[n].item()) for n in rows.dtype.names} for r in rows]


def cf_sets(results):
    """CF sets by (method, purpose): (answers, counterfactual array)."""
    sets = {}
    with h5py.File(results, "r") as f:
        for key, g in f["counterfactuals"].items():
            attr = lambda n: g.attrs[n].decode() if isinstance(g.attrs[n], bytes) else g.attrs[n]  # noqa: E731
            name = (attr("method"), attr("purpose"))
            assert name not in sets, f"two CF sets for {name}"
            sets[name] = ([a.decode() if isinstance(a, bytes) else a for a in g["answer"][()]],
                          g["counterfactual"][()])
    return sets


def h5_strings(results):
    """Every string in a results file (attributes, string datasets, string fields of tables), for the key
    check: a plain grep misses bytes in compressed chunks."""
    found = []

    def add(value):
        if isinstance(value, (bytes, str)):
            found.append(value if isinstance(value, bytes) else value.encode())
        elif isinstance(value, np.ndarray) and value.dtype.names:  # a table: its fields
            for n in value.dtype.names:
                add(value[n])
        elif isinstance(value, np.ndarray) and value.dtype.kind in "SOU":
            for v in value.flat:
                add(v)

    def visit(_, obj):
        for v in obj.attrs.values():
            add(v)
        if isinstance(obj, h5py.Dataset):
            add(obj[()])

    with h5py.File(results, "r") as f:
        visit("/", f)
        f.visititems(visit)
    return found


def session_pids(sid):
    """The processes of session `sid` that still run: mpirun started with start_new_session and its ranks
    (Open MPI gives each rank a process group of its own, so killpg of mpirun's group misses them)."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:  # state, ppid, pgrp, session
            pids.append(int(pid))
    return pids


def finished(results):
    """Whether every planned task has a done row, counted by kind."""
    done = {}
    keys = {}
    for t in task_rows(results):
        keys.setdefault(t["kind"], set()).add(t["key"])
        if t["status"] == "done":
            done.setdefault(t["kind"], set()).add(t["key"])
    return {k: len(v) for k, v in done.items()}, {k: len(v) for k, v in keys.items()}


class RemoteSweepTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="remote-sweep-")
        self.dir = self.tmp.name
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.stop()
        self.tmp.cleanup()

    def start_server(self, *flags):
        s = FakeServer(self.dir, *flags)
        self.servers.append(s)
        return s

    def write_config(self, port):
        path = os.path.join(self.dir, "sweep.ini")
        with open(path, "w") as f:
            f.write(SWEEP.format(port=port))
        return path

    def assert_no_key(self, *keys):
        """No file under the test's directory holds a key: not the results files (their strings read through
        h5py too), not the work dirs and their llm-cache, not the sweeps' or the server's output."""
        n_files = n_results = 0
        for root, _, names in os.walk(self.dir):
            for name in names:
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    data = f.read()
                n_files += 1
                for key in keys:
                    self.assertNotIn(key.encode(), data, f"the API key is written in {path}")
                if name.endswith(".h5"):
                    n_results += 1
                    strings = h5_strings(path)
                    self.assertTrue(any(b"gpt-fake=fake-model@http://127.0.0.1:" in s for s in strings), path)
                    for key in keys:
                        hits = [s[:120] for s in strings if key.encode() in s]
                        self.assertEqual(hits, [], f"the API key is in a string of {path}")
                    with h5py.File(path, "r") as f:
                        config = f.attrs["config"]
                        config = config.decode() if isinstance(config, bytes) else config
                    self.assertIn("[lm]", config)  # the stored configuration is there, without the key
                    for key in keys:
                        self.assertNotIn(key, config)
        self.assertGreater(n_results, 0)  # really looked at the runs' files
        self.assertGreater(n_files, 10)

    def assert_full_run(self, results, n_logged, cache_hits):
        """The remote rows of a finished run: /metrics/cf rows for both methods, usage rows that account for
        every answer (from the server, or all of them from the cache)."""
        done, planned = finished(results)
        self.assertEqual(done, TASKS_BY_KIND)
        self.assertEqual(planned, TASKS_BY_KIND)
        with h5py.File(results, "r") as f:
            cf = f["metrics/cf"][()]
        methods = {m.decode() for m in cf["method"]}
        self.assertEqual(methods, {"nice", *REMOTE_METHODS})
        for r in cf:
            if r["method"].decode() in REMOTE_METHODS and r["n_queries"] > 0:
                self.assertEqual(r["parse_rate"], 1.0, r)  # the server's <new> block parses
        usage = usage_rows(results)
        self.assertEqual(sorted((u["method"], u["purpose"]) for u in usage),
                         sorted((m, p) for m in REMOTE_METHODS for p in ("table3", "augment")))
        for u in usage:
            self.assertGreater(u["answers"], 0, u)
            self.assertEqual(u["failures"], 0, u)
            self.assertEqual(u["retries"], 0, u)
            if cache_hits:
                self.assertEqual(u["cache_hits"], u["answers"], u)
                self.assertEqual(u["requests"], 0, u)
                self.assertEqual(u["prompt_tokens"], 0, u)
            else:
                self.assertEqual(u["cache_hits"], 0, u)
                self.assertEqual(u["requests"], u["answers"], u)
                self.assertGreater(u["prompt_tokens"], 0, u)
                self.assertGreater(u["completion_tokens"], 0, u)
        self.assertEqual(sum(u["requests"] for u in usage), n_logged)
        sets = cf_sets(results)
        for method in REMOTE_METHODS:
            for purpose in ("table3", "augment"):
                answers, x = sets[(method, purpose)]
                self.assertEqual(len(answers), len(x))
                self.assertEqual(len(answers), next(u["answers"] for u in usage
                                                    if (u["method"], u["purpose"]) == (method, purpose)))
                for a in answers:
                    self.assertIn("<new>", a, (method, purpose))
                self.assertTrue(np.isfinite(x).any(), (method, purpose))
        return sets

    def test_cached_answers_are_never_asked_again_and_rebuild_offline(self):
        server = self.start_server()
        config = self.write_config(server.port)
        first = os.path.join(self.dir, "first.h5")
        rc, log = run_sweep(2, config, first)
        self.assertEqual(rc, 0, log)
        logged = server.lines()
        self.assertTrue(logged)
        self.assertEqual({status for _, status in logged}, {"200"}, "every request carried the right key")
        cache = os.path.join(self.dir, "first.work", "llm-cache")
        stems = cache_files(cache)
        self.assertEqual(stems, {h for h, _ in logged}, "every answer the server gave is cached, under its hash")
        self.assertEqual(len(stems), len(logged), "no request was sent twice")
        sets1 = self.assert_full_run(first, n_logged=len(logged), cache_hits=False)
        self.assertEqual(sum(u["answers"] for u in usage_rows(first)), len(stems))

        # The finished study again: every task is skipped, nothing is asked.
        rc, log = run_sweep(2, config, first)
        self.assertEqual(rc, 0, log)
        self.assertEqual(len(server.lines()), len(logged))

        # A new results file on the same cache: every generate task runs again, from the cache alone.
        second = os.path.join(self.dir, "second.h5")
        rc, log = run_sweep(2, config, second, "--lm.cache_dir", cache)
        self.assertEqual(rc, 0, log)
        self.assertEqual(len(server.lines()), len(logged), "an answer in the cache was asked again")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "second.work", "llm-cache")))
        sets2 = self.assert_full_run(second, n_logged=0, cache_hits=True)

        # Offline, without the server: the same CFs from the cache.
        server.stop()
        third = os.path.join(self.dir, "third.h5")
        rc, log = run_sweep(2, config, third, "--lm.offline", "true", "--lm.cache_dir", cache)
        self.assertEqual(rc, 0, log)
        sets3 = self.assert_full_run(third, n_logged=0, cache_hits=True)
        self.assertEqual(cache_files(cache), stems)
        for other in (sets2, sets3):
            self.assertEqual(sorted(other), sorted(sets1))
            for name, (answers, x) in sets1.items():
                self.assertEqual(other[name][0], answers, name)
                np.testing.assert_array_equal(other[name][1], x, err_msg=str(name))  # NaN == NaN here
        self.assert_no_key(KEY)

    def test_kill_9_of_the_job_while_it_asks_then_resume_asks_nothing_twice(self):
        server = self.start_server("--delay-ms", "40")
        config = self.write_config(server.port)
        results = os.path.join(self.dir, "r.h5")
        cache = os.path.join(self.dir, "r.work", "llm-cache")
        out = open(results + ".killed.out", "w")
        # A session of its own: the whole job (mpirun and its ranks) is the session's processes.
        proc = subprocess.Popen(sweep_cmd(3, config, results), env=ENV, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        start = time.time()
        try:
            while len(server.lines()) < 10 or not cache_files(cache):
                self.assertIsNone(proc.poll(), "the sweep ended before it had asked 10 requests")
                self.assertLess(time.time() - start, 120, "the sweep asked fewer than 10 requests in 120 s")
                time.sleep(0.005)
            self.assertGreaterEqual(len(session_pids(proc.pid)), 4, "mpirun and its 3 ranks")
        finally:
            for pid in session_pids(proc.pid):
                os.kill(pid, signal.SIGKILL)
            proc.wait(timeout=60)
            out.close()
        deadline = time.time() + 30
        while any(mpi_jobs.rank_pid(rank, "sweep", results) for rank in range(3)):
            self.assertLess(time.time(), deadline, "a rank outlived its SIGKILL")
            time.sleep(0.01)
        cached_at_kill = cache_files(cache)  # every rank is gone: nothing writes to the cache any more
        time.sleep(0.3)  # requests in flight at the kill reach the log
        before = server.lines()
        self.assertEqual(cache_files(cache), cached_at_kill, "the cache grew after the kill")
        self.assertGreater(len(cached_at_kill), 0)
        self.assertLess(len(cached_at_kill), 100, "killed too late to test anything")

        rc, log = run_sweep(3, config, results)
        self.assertEqual(rc, 0, log)
        after = server.lines()[len(before):]
        self.assertTrue(after, "the resumed sweep asked nothing")
        asked_again = sorted({h for h, _ in after} & cached_at_kill)
        self.assertEqual(asked_again, [], "the resumed sweep asked again for answers it had cached")
        self.assertEqual({s for _, s in before + after}, {"200"})
        final = cache_files(cache)
        self.assertEqual(len({h for h, _ in before + after}), len(final), "an answer the server gave is not cached")
        self.assertEqual({h for h, _ in before + after}, final)
        done, planned = finished(results)
        self.assertEqual(done, TASKS_BY_KIND)
        self.assertEqual(planned, TASKS_BY_KIND)
        # The resumed tasks' usage: what they took from the cache plus what they asked for is everything.
        usage = usage_rows(results)
        self.assertEqual(len(usage), 4)
        self.assertEqual(sum(u["answers"] for u in usage), len(final))
        self.assertEqual(sum(u["failures"] for u in usage), 0)
        for u in usage:
            self.assertEqual(u["requests"] + u["cache_hits"], u["answers"], u)
        # No task had finished at the kill (each asks >= 30 times): every answer cached then is read back.
        self.assertEqual(sum(u["cache_hits"] for u in usage), len(cached_at_kill))
        self.assertEqual(sum(u["requests"] for u in usage), len(after))
        self.assert_no_key(KEY)

    def test_wrong_key_fails_the_remote_tasks_with_a_hint_and_the_rest_goes_on(self):
        server = self.start_server()
        config = self.write_config(server.port)
        results = os.path.join(self.dir, "wrong-key.h5")
        rc, log = run_sweep(2, config, results, env=dict(ENV, OPENAI_API_KEY=WRONG_KEY))
        self.assertEqual(rc, EXIT_TASKS_FAILED, log)
        logged = server.lines()
        self.assertTrue(logged)
        self.assertEqual({s for _, s in logged}, {"401"})
        rows = task_rows(results)
        by_key = {}
        for t in rows:
            by_key.setdefault(t["key"], []).append(t)
        n_failed_generate = 0
        for key, attempts in by_key.items():
            t = attempts[-1]
            statuses = {a["status"] for a in attempts}
            if t["method"] in REMOTE_METHODS and t["kind"] == "generate":
                n_failed_generate += 1
                self.assertNotIn("done", statuses, t)
                # A refused key is a permanent error: one attempt, not sweep.max_attempts.
                self.assertEqual(len(attempts), 1, attempts)
                for a in attempts:
                    self.assertEqual(a["status"], "failed", a)
                    self.assertIn("HTTP 401", a["message"], a)
                    self.assertIn("OPENAI_API_KEY", a["message"], a)
                    self.assertIn("not retried", a["message"], a)
            elif t["method"] in REMOTE_METHODS:
                self.assertNotIn("done", statuses, t)  # an augment with the failed CFs as input
            else:
                self.assertIn("done", statuses, t)  # nice, and the splits and classifiers
        self.assertEqual(n_failed_generate, 4)
        # Per task one attempt, in which at most max_concurrency (2) requests were in flight at the refusal.
        self.assertLessEqual(len(logged), 4 * 2, "remote generate tasks retried after a 401")
        with h5py.File(results, "r") as f:
            cf = f["metrics/cf"][()]
        self.assertEqual({m.decode() for m in cf["method"]}, {"nice"})
        self.assertEqual(cache_files(os.path.join(self.dir, "wrong-key.work", "llm-cache")), set())
        self.assert_no_key(KEY, WRONG_KEY)


if __name__ == "__main__":
    unittest.main(verbosity=2)
