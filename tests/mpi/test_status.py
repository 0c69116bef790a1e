"""`sensecf status` on a live mpirun sweep (the probe plan: tasks that sleep, one that always fails): while it
runs, the status names running tasks with their worker ranks and the counts add up; at the end it is finished
with the failure and its message; after a kill -9 of the job, a status that stops being updated is reported as
stopped, with how to resume.
"""
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

BIN = os.environ.get("SENSECF_BIN", "build/cpu-release/bin/sensecf")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")


def start(results, n_tasks, ms):
    cmd = ["mpirun", "-np", "3", "--oversubscribe", BIN, "sweep", "--sweep.plan", "probe", "--sweep.probe_tasks",
           str(n_tasks), "--sweep.probe_ms", str(ms), "--sweep.probe_fail", "3", "--results", results,
           "--log.level", "warn"]
    return subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def status(results, *extra):
    p = subprocess.run([BIN, "status", "--results", results, "--log.level", "warn", *extra], env=ENV,
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


class Status(unittest.TestCase):
    def test_a_live_sweep_then_its_end(self):
        with tempfile.TemporaryDirectory() as d:
            results = os.path.join(d, "probe.h5")
            job = start(results, 30, 300)
            seen_running = None
            deadline = time.time() + 60
            while time.time() < deadline and job.poll() is None:
                if os.path.exists(results + ".status.json"):
                    rc, out = status(results, "--json")
                    self.assertEqual(rc, 0, out)
                    s = json.loads(out)
                    t = s["total"]
                    self.assertEqual(t["tasks"], 30, s)
                    self.assertEqual(t["done"] + t["running"] + t["failed"] + t["blocked"] + t["pending"], 30, s)
                    if s["state"] == "running" and s["running"]:
                        seen_running = s
                        break
                time.sleep(0.2)
            self.assertIsNotNone(seen_running, "never saw a running task")
            for r in seen_running["running"]:
                self.assertTrue(set(r["ranks"]) <= {1, 2}, r)
                self.assertTrue(r["label"].startswith("probe #"), r)
            rc, text = status(results)
            self.assertEqual(rc, 0, text)
            self.assertIn("running", text)
            out, _ = job.communicate(timeout=120)
            self.assertEqual(job.returncode, 3, out)  # a task failed
            rc, out = status(results, "--json")
            s = json.loads(out)
            self.assertEqual(s["state"], "finished", s)
            self.assertEqual(s["total"]["done"], 29, s)
            self.assertEqual(len(s["failed"]), 1, s)
            self.assertIn("fails by request", s["failed"][0]["message"])
            self.assertFalse(s["stopped"])
            # Its log: every attempt under a header, with what it said, though workers print only warnings.
            log = os.path.join(d, "probe.work", "tasks", s["failed"][0]["key"], "log.txt")
            rc, text = status(results)
            self.assertIn("log: " + log, text)
            with open(log) as f:
                content = f.read()
            self.assertEqual(content.count("== probe #3"), 3, content)
            self.assertIn("fails by request", content)
            done = [k for k in os.listdir(os.path.join(d, "probe.work", "tasks")) if k != s["failed"][0]["key"]]
            self.assertTrue(done)
            with open(os.path.join(d, "probe.work", "tasks", done[0], "log.txt")) as f:
                self.assertIn("attempt 1 on rank", f.read())

    def test_a_killed_sweep_is_reported_as_stopped(self):
        with tempfile.TemporaryDirectory() as d:
            results = os.path.join(d, "probe.h5")
            job = start(results, 200, 500)
            deadline = time.time() + 60
            while time.time() < deadline and not os.path.exists(results + ".status.json"):
                time.sleep(0.2)
            time.sleep(1.0)
            os.killpg(job.pid, signal.SIGKILL)
            job.wait(timeout=30)
            subprocess.run(["pkill", "-9", "-f", results], check=False)  # ranks in their own process groups
            time.sleep(1.5)
            rc, out = status(results, "--json", "--status.stale", "1")
            s = json.loads(out)
            self.assertEqual(s["state"], "running", s)
            self.assertTrue(s["stopped"], s)
            rc, text = status(results, "--status.stale", "1")
            self.assertIn("not running any more", text)
            self.assertIn("rerun the same sweep command", text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
