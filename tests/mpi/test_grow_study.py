"""Growing a finished study in place: a real mpirun sweep, then the same results file with more seeds, a
scenario and a method. Only the new tasks run (every finished task keeps its single attempt, nothing is
recomputed), the file holds both, and the journal now carries the grown configuration, so a plain rerun of it
is a resume. Changes that would alter finished tasks (a classifier setting, sweep.queries) and a shrunk list
are refused, naming the keys. Read back with h5py.
"""
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import h5py

BIN = os.environ.get("SENSECF_BIN", "build/cpu-release/bin/sensecf")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")
EXIT_USAGE = 2

CONFIG = """[sweep]
methods = nice
scenarios = positive
ratios = 0.5
seeds = 1
queries = 10
fig1_reductions =
[data]
source = synth
[synth]
participants = 30
[clf]
nn_max_epochs = 30
"""


def sweep(results, config, *extra):
    cmd = ["mpirun", "-np", "2", "--oversubscribe", BIN, "sweep", "--config", config, "--results", results,
           "--log.level", "info", *extra]
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout + p.stderr


def tasks(results):
    with h5py.File(results, "r") as f:
        rows = f["tasks"][()]
    return [{n: (r[n].decode() if isinstance(r[n], bytes) else r[n].item()) for n in rows.dtype.names} for r in rows]


class GrowStudy(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sensecf-grow-")
        self.config = os.path.join(self.dir, "study.ini")
        with open(self.config, "w") as f:
            f.write(CONFIG)
        self.results = os.path.join(self.dir, "study.h5")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_more_seeds_a_scenario_and_a_method_run_only_the_new_tasks(self):
        rc, log = sweep(self.results, self.config)
        self.assertEqual(rc, 0, log)
        first = tasks(self.results)
        first_keys = {t["key"] for t in first}
        self.assertTrue(first_keys)

        grow = ["--sweep.seeds", "1,2", "--sweep.scenarios", "positive,negative", "--sweep.methods",
                "nice,dice-random"]
        rc, log = sweep(self.results, self.config, *grow)
        self.assertEqual(rc, 0, log)
        self.assertIn("growing the study", log)
        self.assertIn("sweep.seeds: 1 -> 1,2", log)
        after = tasks(self.results)
        attempts = collections.Counter(t["key"] for t in after)
        # Every finished task is still there once: nothing was run again.
        for key in first_keys:
            self.assertEqual(attempts[key], 1, key)
        new = {t["key"]: t for t in after if t["key"] not in first_keys}
        self.assertTrue(new)
        self.assertTrue(all(t["status"] == "done" for t in after), [t for t in after if t["status"] != "done"])
        # The new tasks: seed 2's, the negative scenario's, dice-random's.
        self.assertIn(2, {t["seed"] for t in new.values()})
        self.assertIn("negative", {t["scenario"] for t in new.values()})
        self.assertIn("dice-random", {t["method"] for t in new.values()})
        self.assertNotIn("dice-random", {t["method"] for t in first})
        with h5py.File(self.results, "r") as f:
            cf = f["metrics/cf"][()]
            config_attr = f.attrs["config"].decode()
        methods_seeds = {(m.decode(), int(s)) for m, s in zip(cf["method"], cf["seed"])}
        self.assertTrue({("nice", 1), ("nice", 2), ("dice-random", 1), ("dice-random", 2)} <= methods_seeds)
        self.assertIn("seeds = 1,2", config_attr.replace(" ", "").replace("seeds=", "seeds = "))

        # The grown configuration is the study's now: the same command again is a resume with nothing to do.
        rc, log = sweep(self.results, self.config, *grow)
        self.assertEqual(rc, 0, log)
        self.assertNotIn("growing the study", log)
        self.assertEqual(len(tasks(self.results)), len(after))

        # Refused: a list that shrinks, a setting that changes finished tasks.
        rc, log = sweep(self.results, self.config)  # seeds 1,2 -> 1
        self.assertEqual(rc, EXIT_USAGE, log)
        self.assertIn("sweep.seeds: 1,2 -> 1 (a list may only grow", log)
        rc, log = sweep(self.results, self.config, *grow, "--sweep.queries", "20")
        self.assertEqual(rc, EXIT_USAGE, log)
        self.assertIn("sweep.queries: 10 -> 20", log)
        self.assertNotIn("growing the study", log)
        more = ["--sweep.seeds", "1,2,3", "--sweep.scenarios", "positive,negative", "--sweep.methods", "nice,dice-random"]
        rc, log = sweep(self.results, self.config, *more, "--clf.nn_max_epochs", "31")
        self.assertEqual(rc, EXIT_USAGE, log)
        self.assertIn("clf.nn_max_epochs: 30 -> 31", log)
        self.assertEqual(len(tasks(self.results)), len(after), "a refused run ran nothing")

        # An ablation in a file of its own (seed 3), reported together with the study: `report` merges them.
        other = os.path.join(self.dir, "seed3.h5")
        rc, log = sweep(other, self.config, "--sweep.seeds", "3")
        self.assertEqual(rc, 0, log)
        single = self.report([self.results], "single")
        merged = self.report([self.results, other], "merged")
        twice = self.report([self.results, self.results], "twice")
        with open(os.path.join(merged, "index.md")) as f:
            index = f.read()
        self.assertIn("Results files (merged", index)
        self.assertIn(f"`{other}`", index)
        self.assertEqual(index.count("| config hash |"), 2, index)  # each file's provenance
        # The same study given twice counts each task once: the tables are the single file's.
        for name in ("table3.csv", "table4.csv", "fig6.csv"):
            with open(os.path.join(single, name)) as a, open(os.path.join(twice, name)) as b:
                self.assertEqual(a.read(), b.read(), name)
        with open(os.path.join(twice, "index.md")) as f:
            self.assertIn("appear in more than one file; each counts once", f.read())
        # Seed 3's rows join the merged tables.
        with open(os.path.join(single, "table4.csv")) as a, open(os.path.join(merged, "table4.csv")) as b:
            self.assertNotEqual(a.read(), b.read())

    def report(self, files, name):
        out = os.path.join(self.dir, name)
        p = subprocess.run([BIN, "report", "--results", ",".join(files), "--out", out, "--log.level", "warn"],
                           env=ENV, capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return out


if __name__ == "__main__":
    unittest.main(verbosity=2)
