"""``make demo ARGS="..."`` hands its arguments to ``firebreak demo`` (README, "The demo")."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STARTUP_LIMIT = 30.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.timeout(120)
def test_make_demo_passes_args_through(tmp_path) -> None:
    bin_dir = Path(sys.executable).parent
    if shutil.which("make") is None or not (bin_dir / "firebreak").exists():
        pytest.skip("needs make and an installed `firebreak` beside this Python")
    port, data_dir = _free_port(), tmp_path / "demo-data"
    env = {key: value for key, value in os.environ.items()
           if key not in ("SLACK_APP_TOKEN", "DATABASE_URL", "PLAYBOOKS_DIR", "MAKEFLAGS")}
    # BIN: this test's environment; -o: never reinstall it from here.
    process = subprocess.Popen(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "demo", f"BIN={bin_dir}",
         f"ARGS=--no-browser --port {port} --data-dir {data_dir}"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    try:
        started = time.monotonic()
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/console/health", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() - started < STARTUP_LIMIT, "the console did not answer on the given port"
            time.sleep(0.1)
        assert (data_dir / "firebreak.log").exists()  # --data-dir reached the demo too
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
    assert f"127.0.0.1:{port}" in output
