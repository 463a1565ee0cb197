"""Multi-process training (DDP, gloo on CPU, 127.0.0.1) through the command line: two
processes with batch 8 equal one process with batch 16; a DDP run resumes after being
killed; when one process dies, the other stops with a message naming its rank."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

pytestmark = [
    pytest.mark.slow,
    pytest.mark.e2e,
    pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 CPU cores"),
]

NO_DROPOUT = ["--set", "model.dropout=0", "--set", "train.patience=0"]


def _cmd(tiny_csv, tiny_text, out, *extra):
    sets = [a for s in tiny_text if not s.startswith("train.batch_size") for a in ("--set", s)]
    return [
        sys.executable, "-m", "attnlab.cli", "train", "text", "--data", str(tiny_csv),
        "--model", "bilstm-attn", "--out", str(out), "--no-progress", *sets, *NO_DROPOUT, *extra,
    ]  # fmt: skip


def _env():
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run(cmd, timeout=300):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _close(a, b, atol=1e-5):
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    worst = max((wa[k] - wb[k]).abs().max().item() for k in wa)
    assert worst <= atol, f"largest weight difference {worst:.3g}"


def test_two_processes_equal_one_with_the_global_batch(tiny_csv, tiny_text, tmp_path):
    # 240 training examples: 15 optimizer steps of 16 either way, same sample order.
    one = tmp_path / "one"
    two = tmp_path / "two"
    _run(_cmd(tiny_csv, tiny_text, one, "--epochs", "1", "--set", "train.batch_size=16"))
    proc = _run(
        _cmd(
            tiny_csv,
            tiny_text,
            two,
            "--epochs",
            "1",
            "--set",
            "train.batch_size=8",
            "--devices",
            "2",
        )
    )
    assert proc.stdout.count("test accuracy") == 1  # rank 0 alone evaluates and reports
    _close(one, two)


def _wait_for(path, proc, timeout=240):
    start = time.time()
    while time.time() - start < timeout:
        if path.is_file():
            size = path.stat().st_size
            time.sleep(0.5)
            if path.stat().st_size == size:
                return
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.2)
    raise AssertionError(f"{path} did not appear within {timeout} s")


def test_ddp_run_resumes_after_being_killed(tiny_csv, tiny_text, tmp_path):
    args = ["--epochs", "3", "--set", "train.batch_size=8", "--devices", "2"]
    full = tmp_path / "full"
    _run(_cmd(tiny_csv, tiny_text, full, *args))

    out = tmp_path / "cut"
    proc = subprocess.Popen(
        _cmd(tiny_csv, tiny_text, out, *args), env=_env(), start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_for(tmp_path / "cut.partial" / "checkpoints" / "last.ckpt", proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert not out.exists()
    _run(_cmd(tiny_csv, tiny_text, out, *args, "--resume"))
    _close(full, out)


def test_killed_rank_stops_the_others_with_a_message(tiny_csv, tiny_text, tmp_path):
    out = tmp_path / "run"
    cmd = _cmd(
        tiny_csv, tiny_text, out, "--epochs", "200", "--set", "train.batch_size=8", "--devices", "2"
    )
    proc = subprocess.Popen(
        cmd, env=_env(), start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        _wait_for(tmp_path / "run.partial" / "checkpoints" / "last.ckpt", proc)
        children = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
        assert children, "rank 1 was not found"
        os.kill(int(children[0]), signal.SIGKILL)
        killed = time.time()
        _, err = proc.communicate(timeout=90)
        assert time.time() - killed < 60
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    assert "rank: 1" in err or "rank 1" in err, err[-2000:]
    assert not out.exists()


def test_more_devices_than_cores_is_refused(tiny_csv, tiny_text, tmp_path):
    from attnlab.cli.main import main

    n = (os.cpu_count() or 1) + 1
    argv = [
        "train",
        "text",
        "--data",
        str(tiny_csv),
        "--out",
        str(tmp_path / "r"),
        "--devices",
        str(n),
    ]
    assert main(argv) == 2


def test_zero_devices_is_refused(capsys):
    from attnlab.cli.main import main

    assert main(["train", "text", "--devices", "0"]) == 2
    assert "devices must be >= 1, got 0" in capsys.readouterr().err
