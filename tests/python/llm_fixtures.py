"""What the golden tests against transformers and PEFT share: the sensecf
binary, the fixtures folder (tests/golden/llm/fixtures, written by
tests/golden/llm/make_goldens.py), and the run-or-skip loop over fixtures."""
import json
import os
import subprocess
import tempfile

BIN = os.environ.get("SENSECF_BIN", "build/cpu-release/bin/sensecf")
FIXTURES = os.environ.get("SENSECF_LLM_FIXTURES",
                          os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden", "llm", "fixtures"))


def run(*args):
    """sensecf's stdout; a failing command raises with its stderr."""
    return subprocess.run([BIN, *args], check=True, capture_output=True, text=True).stdout


def load_fixture(path, work):
    """The fixture at `path` and the tiny checkpoint it was made from, re-created
    in `work` by `sensecf lm init-tiny` (deterministic for the seed)."""
    with open(path) as f:
        fx = json.load(f)
    model = os.path.join(work, fx["family"])
    run("lm", "init-tiny", "--family", fx["family"], "--out", model, "--seed", str(fx["seed"]))
    return fx, model


def check_fixtures(select, check, what):
    """Runs check(path, work) on every fixture file `select(name)` accepts;
    exit status 77 (skipped, saying why) when there is none."""
    names = sorted(n for n in os.listdir(FIXTURES) if n.endswith(".json") and select(n)
                   ) if os.path.isdir(FIXTURES) else []
    if not names:
        print(f"SKIP: no {what} fixtures in tests/golden/llm/fixtures; produce them where transformers and peft are "
              "installed with tests/golden/llm/make_goldens.py (scripts/device/gpu-check does)")
        return 77
    with tempfile.TemporaryDirectory() as work:
        for name in names:
            check(os.path.join(FIXTURES, name), work)
    return 0
