"""The virtualenv that generates and runs a client from the live OpenAPI document
(tests/api/test_generated_client.py): openapi-python-client and what its clients import,
pinned in client_requirements.txt. Its pins conflict with none of the project's, but it is
kept apart so that the client is tried as an outside user would: with nothing of the
project installed.

Built once and reused: rebuilt only when client_requirements.txt changes (a copy of it is
the completion stamp). `make ci-deps` builds it before the timed suite; run this file with
a Python 3.11 to build it by hand. The folder is OPENAPI_CLIENT_VENV, by default
var/venvs/openapi-client.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = Path(__file__).with_name("client_requirements.txt")


def client_venv_dir() -> Path:
    return Path(os.environ.get("OPENAPI_CLIENT_VENV", ROOT / "var" / "venvs" / "openapi-client"))


def client_venv_python(venv: Path | None = None) -> Path:
    """The venv's interpreter, the venv (re)built first unless it was completed from the
    current requirements."""
    venv = venv or client_venv_dir()
    python = venv / "bin" / "python"
    stamp = venv / REQUIREMENTS.name
    wanted = REQUIREMENTS.read_text()
    if not (stamp.exists() and stamp.read_text() == wanted):
        print(f"building {venv} from {REQUIREMENTS.name} (once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "-r", str(REQUIREMENTS)], check=True)
        stamp.write_text(wanted)
    return python


if __name__ == "__main__":
    print(client_venv_python())
