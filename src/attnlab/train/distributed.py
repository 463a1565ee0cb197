"""Several processes and machines: ranks, what the machine can serve, the Lightning
strategy, and a readable message when one process dies.

Multi-process training is Lightning's DDP: gloo on CPU, NCCL on GPUs. ``devices`` processes
run on each of ``num_nodes`` machines. On one machine attnlab launches the processes
itself; across machines ``torchrun`` or SLURM's ``srun`` start them (see
docs/architecture.md for the commands).
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

import torch

from attnlab.runs.config import TrainConfig

__all__ = ["TIMEOUT", "check_devices", "describe_failure", "env_rank", "make_strategy"]

#: How long a process waits for the others in a collective before giving up.
TIMEOUT = timedelta(seconds=60)


def env_rank() -> int:
    """This process's global rank as set by its launcher (0 when it runs alone).

    Read before the process group exists, so that only rank 0 touches the run folder.
    """
    env = os.environ
    if env.get("RANK", "").isdigit():  # torchrun
        return int(env["RANK"])
    if env.get("SLURM_PROCID", "").isdigit() and int(env.get("SLURM_NTASKS", "1")) > 1:
        return int(env["SLURM_PROCID"])
    if env.get("LOCAL_RANK", "").isdigit():  # processes Lightning launched
        devices = int(env.get("ATTNLAB_DEVICES", "1"))
        return int(env.get("NODE_RANK", "0")) * devices + int(env["LOCAL_RANK"])
    return 0


def check_devices(train: TrainConfig) -> None:
    """Refuse more processes than this machine can serve.

    Raises:
        ValueError: more GPU processes than GPUs, or more CPU processes than cores.
    """
    if torch.cuda.is_available():
        have, what = torch.cuda.device_count(), "GPU(s)"
    else:
        have, what = os.cpu_count() or 1, "CPU cores (one process per core at most)"
    if train.devices > have:
        raise ValueError(f"devices={train.devices}: this machine has {have} {what}")


def make_strategy(train: TrainConfig):
    """The Lightning strategy for ``train`` (``"auto"`` for one process)."""
    if train.world_size == 1 and train.strategy == "auto":
        return "auto"
    from lightning.pytorch.strategies import DDPStrategy

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    start = "spawn" if train.strategy == "ddp-spawn" else "popen"
    return DDPStrategy(process_group_backend=backend, timeout=TIMEOUT, start_method=start)


def describe_failure(trainer, error: BaseException) -> str:
    """One line saying which process stopped a multi-process training and why."""
    failed = []
    launcher = getattr(trainer.strategy, "launcher", None)
    procs = list(getattr(launcher, "procs", []) or [])
    # A peer's death reaches this process as a broken connection, sometimes before the
    # peer has been reaped: give it a moment to report how it ended.
    for _ in range(50 if procs else 0):
        if any(proc.poll() not in (None, 0) for proc in procs):
            break
        time.sleep(0.1)
    for i, proc in enumerate(procs, 1):
        code = proc.poll()
        if code not in (None, 0):
            how = f"signal {-code}" if code < 0 else f"status {code}"
            failed.append(f"rank {i} exited with {how}")
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    who = "; ".join(failed) if failed else f"{type(error).__name__}: {first}"
    return f"multi-process training stopped on rank {trainer.global_rank}: {who}"
