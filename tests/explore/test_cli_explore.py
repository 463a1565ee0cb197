"""``attnlab explore --pretrained minilm`` as a user starts it: a process that prints its URL."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest


@pytest.mark.slow
@pytest.mark.e2e
def test_explore_command_prints_url_and_serves():
    cmd = [sys.executable, "-m", "attnlab.cli", "explore", "--pretrained", "minilm", "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        line = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if "http://" in line or proc.poll() is not None:
                break
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, (
            f"no URL printed: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        )
        url = m.group(0)
        for _ in range(100):  # the URL is printed just before the server accepts connections
            try:
                r = httpx.post(url + "api/attention", json={"text": "hello world"}, timeout=60)
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert r.status_code == 200 and r.json()["tokens"] == ["[CLS]", "hello", "world", "[SEP]"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode in (0, 130, -signal.SIGINT)


def test_explore_needs_a_model(capsys):
    from attnlab.cli.main import main

    assert main(["explore"]) == 2
    assert "give either RUN_DIR or --pretrained NAME" in capsys.readouterr().err
