"""A study that starts from AI-READI's released files: `sensecf synth --raw` writes a v3 release (nested
<uuid>/dataset/, timezone headers, every quirk) with its ground truth; `sensecf ingest` recovers the ground truth
exactly (read back here with Python's csv module, an independent reader); an mpirun sweep with
data.source = aireadi ingests it in parallel tasks on both workers, merges them into the same table, splits by
participants.tsv's recommended_split and runs the study; a second sweep takes the table from the cache; a
resume after the release changed is refused, naming the fingerprint. Read back with h5py.
"""
import csv
import json
import os
import shutil
import subprocess
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
source = aireadi
path = {root}
split = recommended
[ingest]
participants_per_task = 7
cache = {cache}
[clf]
nn_max_epochs = 30
"""


def run(*args, timeout=300):
    p = subprocess.run(list(args), env=ENV, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def sweep(config, results):
    return run("mpirun", "-np", "3", "--oversubscribe", BIN, "sweep", "--config", config, "--results", results,
               "--log.level", "info")


def read_table(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows


def same_table(test, got_path, want_path):
    got, want = read_table(got_path), read_table(want_path)
    test.assertEqual(len(got), len(want), f"{got_path} vs {want_path}")
    test.assertEqual(list(got[0].keys()), list(want[0].keys()))
    for i, (g, w) in enumerate(zip(got, want)):
        for k in w:
            if k in ("participant_id", "gender", "medication", "subgroup"):
                test.assertEqual(g[k], w[k], f"row {i} column {k}")
            else:
                test.assertAlmostEqual(float(g[k]), float(w[k]), places=9, msg=f"row {i} column {k}: {g} vs {w}")


def tasks(results):
    with h5py.File(results, "r") as f:
        rows = f["tasks"][()]
    return [{n: (r[n].decode() if isinstance(r[n], bytes) else r[n].item()) for n in rows.dtype.names} for r in rows]


class AiReadiSweep(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="sensecf-aireadi-")
        cls.raw = os.path.join(cls.dir, "release")
        rc, log = run(BIN, "synth", "--synth.raw", cls.raw, "--synth.format", "v3", "--synth.participants", "20",
                      "--synth.days", "4", "--synth.seed", "5", "--log.level", "warn")
        assert rc == 0, log

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_ingest_recovers_the_ground_truth_exactly(self):
        out = os.path.join(self.dir, "cli", "features.csv")
        rc, log = run(BIN, "ingest", "--aireadi", self.raw, "--out", out)
        self.assertEqual(rc, 0, log)
        same_table(self, out, os.path.join(self.raw, "ground_truth.csv"))
        # The participant without Garmin data (FALSE in participants.tsv, None in the manifest) is reported.
        self.assertIn("wearable_activity_monitor is FALSE", log)
        self.assertIn("dropped", log)
        self.assertTrue(os.path.exists(os.path.join(self.dir, "cli", "features.ingest.json")))

    def test_ingest_reports_a_truncated_file_and_strict_stops_at_it(self):
        raw = os.path.join(self.dir, "small")
        rc, log = run(BIN, "synth", "--raw", raw, "--format", "v2", "--participants", "10", "--days", "3",
                      "--log.level", "warn")
        self.assertEqual(rc, 0, log)
        ids = sorted(os.listdir(os.path.join(raw, "wearable_blood_glucose", "continuous_glucose_monitoring",
                                             "dexcom_g6")))
        cgm = os.path.join(raw, "wearable_blood_glucose", "continuous_glucose_monitoring", "dexcom_g6", ids[-1],
                           f"{ids[-1]}_DEX.json")
        with open(cgm, "rb") as f:
            data = f.read()
        with open(cgm, "wb") as f:
            f.write(data[: len(data) // 2])
        out = os.path.join(self.dir, "small-out", "features.csv")
        rc, log = run(BIN, "ingest", "--aireadi", raw, "--out", out)
        self.assertEqual(rc, 0, log)
        self.assertIn(f"participant {ids[-1]}, wearable_blood_glucose/continuous_glucose_monitoring/dexcom_g6/"
                      f"{ids[-1]}/{ids[-1]}_DEX.json, record ", log)
        self.assertIn("truncated?", log)
        rc, log = run(BIN, "ingest", "--aireadi", raw, "--out", out, "--ingest.strict")
        self.assertEqual(rc, 1, log)
        # The first problem stops it (here the participant without a watch, or the cut file).
        self.assertIn("sensecf ingest: error: participant ", log)
        self.assertIn("--ingest.strict", log)

    def test_a_sweep_from_the_release_then_the_cache_then_a_changed_release(self):
        config = os.path.join(self.dir, "study.ini")
        cache = os.path.join(self.dir, "cache")
        with open(config, "w") as f:
            f.write(CONFIG.format(root=self.raw, cache=cache))
        results = os.path.join(self.dir, "study.h5")
        rc, log = sweep(config, results)
        self.assertEqual(rc, 0, log)
        done = tasks(results)
        ingest = [t for t in done if t["kind"] == "ingest"]
        self.assertEqual(len(ingest), 3, done)  # 20 participants, 7 per task
        self.assertEqual({t["rank"] for t in ingest} <= {1, 2}, True)
        self.assertEqual(len([t for t in done if t["kind"] == "features"]), 1)
        # Each ingest task's own log says what it read (workers print only warnings on stderr).
        with open(os.path.join(self.dir, "study.work", "tasks", ingest[0]["key"], "log.txt")) as f:
            self.assertRegex(f.read(), r"windows of [67] participants")
        self.assertTrue(all(t["status"] == "done" for t in done), [t for t in done if t["status"] != "done"])
        self.assertIn("augment", {t["kind"] for t in done})
        # The merged table is the ground truth (gender left out: a placeholder without controlled access).
        work = os.path.join(self.dir, "study.work")
        same_table(self, os.path.join(work, "features.csv"), os.path.join(self.raw, "ground_truth.csv"))
        features_key = [t["key"] for t in done if t["kind"] == "features"][0]
        with h5py.File(results, "r") as f:
            clf = f["metrics/clf"][()]
            self.assertGreater(len(clf), 0)
            short = [r for r in clf if r["kind"] == b"augment" and r["n_added"] < r["n_wanted"]]
            facts = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f["artifacts"][features_key].attrs.items()}
        # Too few valid CFs for a ratio: one summary line from rank 0, no warning per task.
        self.assertNotRegex(log, r"\[warning\] augment [^\n]*only \d+ valid")
        if short:
            self.assertIn(f"{len(short)} augment task(s) found fewer valid CFs than their ratio asks", log)
        self.assertEqual(int(facts["rows"]), len(read_table(os.path.join(self.raw, "ground_truth.csv"))), facts)
        self.assertEqual(int(facts["participants"]), 20)
        self.assertEqual(facts["from_cache"], "false")
        self.assertIn("stress", facts["dropped"])

        # `sensecf export`: the CFs in long form with each query's participant and categories by name, read
        # back by Python's csv and json modules; the same rows as h5py sees.
        rc, out = run(BIN, "export", "--results", results, "--table", "counterfactuals", "--log.level", "warn")
        self.assertEqual(rc, 0, out)
        rows = list(csv.DictReader(out.splitlines()))
        with h5py.File(results, "r") as f:
            n = sum(f[f"counterfactuals/{k}/query_row"].shape[0] for k in f["counterfactuals"])
            schema = json.loads(f[f"counterfactuals/{sorted(f['counterfactuals'])[0]}"].attrs["schema"])
        self.assertEqual(len(rows), n)
        truth = read_table(os.path.join(self.raw, "ground_truth.csv"))
        ids = {r["participant_id"] for r in truth}
        self.assertTrue(all(r["patient"] in ids for r in rows), rows[0])
        self.assertTrue({r["factual_subgroup"] for r in rows} <= {
            "healthy", "insulin_dependent", "oral_medication_and_or_non_insulin_injectable_medication_controlled",
            "pre_diabetes_lifestyle_controlled"}, rows[0])
        # The factual rows are the table's: each query's participant and subgroup agree with the ground truth.
        subgroup = {r["participant_id"]: r["subgroup"] for r in truth}
        self.assertTrue(all(subgroup[r["patient"]] == r["factual_subgroup"] for r in rows))
        glucose = [f for f in schema["features"] if f["name"] == "glucose_mean"][0]
        self.assertLess(glucose["lower"], glucose["upper"])
        self.assertNotIn("gender", [f["name"] for f in schema["features"]])  # the placeholder column is dropped
        rc, out = run(BIN, "export", "--results", results, "--table", "metrics/cf", "--format", "json",
                      "--log.level", "warn")
        self.assertEqual(rc, 0, out)
        cf = json.loads(out)
        self.assertTrue(cf and all(isinstance(r["method"], str) for r in cf))
        self.assertIn("nice", {r["method"] for r in cf})

        # A damaged CF group (a hand edit, a bad copy) is an error that names it, never a crash or a wrong figure.
        def damaged(edit):
            path = os.path.join(self.dir, "damaged.h5")
            shutil.copy(results, path)
            with h5py.File(path, "r+") as f:
                g = f[f"counterfactuals/{sorted(f['counterfactuals'])[0]}"]
                edit(g)
            return run(BIN, "report", "--results", path, "--out", os.path.join(self.dir, "damaged-report"),
                       "--log.level", "warn")

        def one_factual_row(g):
            x = g["factual"][()]
            del g["factual"]
            g["factual"] = x[:1]

        def flat_found(g):
            x = g["found"][()]
            del g["found"]
            g["found"] = x[:2]

        def many_features(g):
            g.attrs["features"] = json.dumps([f"f{i}" for i in range(100)])

        for edit, text in ((one_factual_row, "/factual has shape [1, "), (flat_found, "/found has shape [2]"),
                           (many_features, "/counterfactual has shape [")):
            rc, out = damaged(edit)
            self.assertEqual(rc, 1, out)
            self.assertIn(text, out)
            self.assertIn("the file is damaged or was edited", out)

        # A second study over the same release and options: the table comes from the cache.
        rc, log = sweep(config, os.path.join(self.dir, "again.h5"))
        self.assertEqual(rc, 0, log)
        # Its ingest tasks found the table cached and read nothing (the first study's wrote their shards).
        shards = lambda work: [f for _, _, files in os.walk(os.path.join(self.dir, work)) for f in files
                               if f == "shard.json"]
        self.assertEqual(len(shards("study.work")), 3)
        self.assertEqual(shards("again.work"), [])
        self.assertEqual(len(os.listdir(cache)), 1)  # one entry: this release's fingerprint
        same_table(self, os.path.join(self.dir, "again.work", "features.csv"),
                   os.path.join(self.raw, "ground_truth.csv"))

        # The release changes under the first results file: resuming it is refused.
        for dirpath, _, files in os.walk(self.raw):
            stress = [f for f in files if f.endswith("_stress.json")]
            if stress:
                with open(os.path.join(dirpath, stress[0]), "a") as f:
                    f.write(" ")
                break
        rc, log = sweep(config, results)
        self.assertEqual(rc, EXIT_USAGE, log)
        self.assertIn("data.fingerprint", log)
        self.assertIn("AI-READI files or ingest options changed", log)


if __name__ == "__main__":
    unittest.main()
