"""The README's quick start, run as written against a fresh `make run` instance.

`scripts/run.py` (what `make run` runs) starts on a free `PORT` in an empty temporary
`PULSELYTICS_VAR_DIR`, as on a fresh clone but with neither at its default. Then, as
from a second terminal in the checkout: every README shell block that needs no terminal
of its own runs in one bash session (so `KEY` and the like carry over, as they would for
a reader), and the banner's `simulate_traffic` line runs as printed in a terminal that
has neither variable. The services and the folder are removed afterwards.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.servers import free_port, process_group_stop

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 240  # migrate and seed_demo's training; about a minute on 2 cores
READY_LINE = "[run] Press Ctrl-C"
TRAFFIC_LINE = re.compile(r"^\[run\] Some traffic for the dashboard \(.*?\): (?P<command>.+)$",
                          re.MULTILINE)

# A README ```sh block containing one of these is not run here, for the reason given.
NOT_RUN = {
    "make run\nmake test": "`make run` is the instance below (it runs until Ctrl-C); "
                           "`make test` is this suite",
    "train_model engagement-likes --data posts.csv": "a tour of every command with "
                                                     "placeholder files, users and versions",
    "check_drift [--model NAME]": "optional arguments in brackets, as in a usage line",
    "bench/serving.py": "a benchmark of minutes with servers of its own",
    "bench/drift.py": "a benchmark of minutes with servers of its own",
    "bench/soak.py": "a benchmark of minutes with servers of its own",
}


def readme_shell_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^```sh\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def terminal_env(**variables: str) -> dict[str, str]:
    """A reader's terminal: none of the suite's settings (DJANGO_SETTINGS_MODULE,
    TEST_DATABASE_URL, ...), only what they set themselves."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8", **variables}


class Instance:
    def __init__(self, port: int, var_dir: Path, banner: str) -> None:
        self.port, self.var_dir, self.banner = port, var_dir, banner


@pytest.fixture(scope="module")
def instance():
    if shutil.which("curl") is None:
        pytest.skip("the README's examples need curl (apt-get install curl; `make ci-deps`)")
    folder = Path(tempfile.mkdtemp(prefix="pulselytics-readme-"))
    port, var_dir, log = free_port(), folder / "var", folder / "run.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "scripts/run.py"], cwd=ROOT, stdout=output,
            stderr=subprocess.STDOUT, start_new_session=True,
            env=terminal_env(PORT=str(port), PULSELYTICS_VAR_DIR=str(var_dir)))
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while READY_LINE not in log.read_text():
            assert process.poll() is None, f"make run exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"make run not ready:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        yield Instance(port, var_dir, log.read_text())
    finally:
        process_group_stop(process, timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def test_every_readme_shell_block_is_run_or_said_why_not():
    blocks = readme_shell_blocks()
    for marker in NOT_RUN:
        assert sum(marker in block for block in blocks) == 1, f"no one README block has {marker!r}"
    assert any(not any(marker in block for marker in NOT_RUN) for block in blocks)


def test_readme_blocks_run_as_written(instance):
    blocks = [block for block in readme_shell_blocks()
              if not any(marker in block for marker in NOT_RUN)]
    script = "set -euo pipefail\n" + "\n".join(blocks)

    result = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False, env=terminal_env(PORT=str(instance.port),
                                      PULSELYTICS_VAR_DIR=str(instance.var_dir)))

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert '"error":' not in result.stdout
    assert result.stdout.count('"prediction_id"') >= 4  # a predict answer per demo model
    assert result.stdout.count('"contributions"') == 4  # an explanation per demo model


def test_banner_traffic_command_works_as_printed_in_another_terminal(instance):
    command = TRAFFIC_LINE.search(instance.banner)["command"]
    assert f"PULSELYTICS_VAR_DIR={shlex.quote(str(instance.var_dir))} " in command
    assert f"--url http://127.0.0.1:{instance.port}" in command

    # A short run of the same command: fewer requests, faster (the options as documented).
    result = subprocess.run(
        ["bash", "-c", f"{command} --count 8 --rate 100"], cwd=ROOT, capture_output=True,
        text=True, timeout=120, check=False, env=terminal_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "predict: sent 8, ok 8, errors 0" in result.stdout
    assert "checks: " in result.stdout
