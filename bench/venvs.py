"""Bench-only virtualenvs for the peers that cannot share the project's environment
(their pins conflict with the project's lock): built by the bench scripts themselves,
never part of the project."""

import subprocess
import sys
from pathlib import Path


def venv_python(venv: Path, requirements: Path, log) -> Path:
    """`venv`'s interpreter, the virtualenv (re)built first unless it was completed from
    the current `requirements` (a copy of them is its completion stamp)."""
    python = venv / "bin" / "python"
    stamp = venv / requirements.name
    wanted = requirements.read_text()
    if not (stamp.exists() and stamp.read_text() == wanted):
        log(f"building {venv.name} from {requirements.name} (a few minutes, once)")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r",
                        str(requirements)], check=True)
        stamp.write_text(wanted)
    return python
