"""Run folders: write a trained model so that it appears only complete, and load it back
without unpickling anything, checking every file against the checksum recorded with it.

A finished run folder holds ``config.json`` (format version, task, run config, the dims
the model was built with, and the SHA-256 of every other file), ``model.safetensors``, the
task's artifacts (e.g. ``tokenizer.json`` and ``labels.json``), ``metrics.json`` and,
when asked for, ``report.html``. Training happens in a sibling ``<name>.partial`` folder
whose ``config.json`` says ``"status": "unfinished"``; only a finished training replaces
``<name>`` (see :func:`publish`), so a failed or interrupted one never touches a good run.

Example:
    >>> from attnlab.runs import load_run
    >>> run = load_run("runs/demo")  # doctest: +SKIP
    >>> run.task.name, run.config.model  # doctest: +SKIP
    ('text', 'bilstm-attn')
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attnlab.models.registry import create_model, get_model
from attnlab.runs.config import RunConfig, build_dataclass
from attnlab.tasks import get_task
from attnlab.tasks.base import Run, Task

__all__ = [
    "CONFIG",
    "FORMAT",
    "METRICS",
    "WEIGHTS",
    "RunError",
    "load_run",
    "partial_dir",
    "publish",
    "read_history",
    "read_meta",
    "save_run",
    "sha256",
    "write_json",
]

WEIGHTS, CONFIG, METRICS = "model.safetensors", "config.json", "metrics.json"
LOG_FILE = "logs/metrics.csv"
FORMAT = 2


class RunError(ValueError):
    """A run folder that cannot be used; the message names the folder or file and what to do."""


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON next to ``path`` and rename it into place (readers never see half a file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def partial_dir(run_dir: str | Path) -> Path:
    """The folder where training into ``run_dir`` happens until it finishes."""
    run_dir = Path(run_dir)
    return run_dir.with_name(run_dir.name + ".partial")


def _meta(task: Task, config: RunConfig, dims: Any, status: str) -> dict[str, Any]:
    from attnlab import __version__

    return {
        "format": FORMAT,
        "attnlab": __version__,
        "task": task.name,
        "status": status,
        "config": config.to_dict(),
        "dims": dataclasses.asdict(dims),
    }


def mark_unfinished(folder: str | Path, *, task: Task, config: RunConfig, dims: Any) -> None:
    """Write the ``config.json`` of a training in progress (refused by :func:`load_run`)."""
    write_json(Path(folder) / CONFIG, _meta(task, config, dims, "unfinished"))


def save_run(
    folder: str | Path,
    *,
    task: Task,
    config: RunConfig,
    model: nn.Module,
    artifacts: Any,
    dims: Any,
    files: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a finished run into ``folder``: weights (safetensors), the task's artifacts,
    and last ``config.json`` with the checksum of every file.

    Args:
        folder: a folder that is not a published run (a staging folder).
        task, config, model, artifacts, dims: what the run is.
        files: other files already in ``folder`` to checksum (e.g. ``metrics.json``).
        extra: more entries for ``config.json``.
    """
    from safetensors.torch import save_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = list(task.save_artifacts(artifacts, folder))
    tmp = folder / f".{WEIGHTS}.tmp"
    save_model(model, str(tmp))
    os.replace(tmp, folder / WEIGHTS)
    meta = _meta(task, config, dims, "finished")
    meta["files"] = {n: sha256(folder / n) for n in [WEIGHTS, *names, *(files or [])]}
    meta.update(extra or {})
    write_json(folder / CONFIG, meta)
    return folder


def publish(staging: str | Path, run_dir: str | Path) -> Path:
    """Move the finished ``staging`` folder to ``run_dir``; an existing run there is
    replaced only now, and is removed only after the new one is in place."""
    staging, run_dir = Path(staging), Path(run_dir)
    old = None
    if run_dir.exists():
        old = run_dir.with_name(f".{run_dir.name}.replaced-{os.getpid()}")
        os.replace(run_dir, old)
    os.replace(staging, run_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return run_dir


def read_meta(run_dir: str | Path, *, finished: bool = True) -> dict[str, Any]:
    """The checked ``config.json`` of a run folder.

    Raises:
        RunError: missing folder or file, malformed JSON, a newer format, or (with
            ``finished``) an unfinished training; the message says what to do.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        hint = ""
        if partial_dir(run_dir).is_dir():
            hint = f"; its training did not finish: resume it with `{_resume_cmd(partial_dir(run_dir))}`"
        raise RunError(f"run folder {run_dir} does not exist{hint}")
    path = run_dir / CONFIG
    if not path.is_file():
        raise RunError(f"{run_dir} is not a run folder: {CONFIG} is missing")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("format"), int):
        raise RunError(f"{path}: not a run config written by attnlab (no format number)")
    if meta["format"] > FORMAT:
        raise RunError(
            f"{path}: written by a newer attnlab (run format {meta['format']}, this one reads "
            f"{FORMAT}); upgrade attnlab"
        )
    if meta["format"] < FORMAT:
        raise RunError(
            f"{path}: run format {meta['format']} is from an older attnlab and no longer read; "
            "train the run again"
        )
    if finished and meta.get("status") != "finished":
        raise RunError(
            f"{run_dir} is an unfinished run (its training was interrupted or failed); "
            f"resume it with `{_resume_cmd(run_dir, meta)}`"
        )
    return meta


def _resume_cmd(folder: Path, meta: dict | None = None) -> str:
    out = folder.with_name(folder.name.removesuffix(".partial"))
    task = (meta or {}).get("task", "TASK")
    if meta is None and (folder / CONFIG).is_file():
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            task = json.loads((folder / CONFIG).read_text(encoding="utf-8")).get("task", task)
    return f"attnlab train {task} --out {out} --resume"


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """Per-epoch values from the run's ``logs/metrics.csv`` (empty when there is none)."""
    path = Path(run_dir) / LOG_FILE
    if not path.is_file():
        return []
    by_epoch: dict[int, dict[str, Any]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            epoch = int(row["epoch"])
            entry = by_epoch.setdefault(epoch, {"epoch": epoch})
            for k, v in row.items():
                if v not in ("", None) and k not in ("epoch", "step"):
                    entry[k] = float(v)
    return [by_epoch[k] for k in sorted(by_epoch)]


def _config(meta: dict[str, Any], path: Path) -> RunConfig:
    try:
        return RunConfig.from_dict(meta["config"])
    except (KeyError, ValueError, TypeError) as e:
        raise RunError(f"{path}: bad run config: {e}") from None


def load_run(
    run_dir: str | Path, *, device: str | torch.device = "cpu", task: str | None = None
) -> Run:
    """Load a finished run folder: checked files, the task's artifacts, the model in eval
    mode on ``device``. Nothing is unpickled.

    Args:
        run_dir: the folder.
        device: where the model goes.
        task: when given, the run must be of this task.

    Returns:
        The task's :class:`~attnlab.tasks.base.Run` subclass (e.g. a text classifier's
        ``TextRun`` with ``predict``).

    Raises:
        RunError: a missing, unfinished, corrupt or mismatched run; the message names the file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    path = run_dir / CONFIG
    if task is not None and meta.get("task") != task:
        raise RunError(f"{run_dir} is a {meta.get('task')!r} run, not a {task!r} run")
    config = _config(meta, path)
    t = get_task(config.task)
    files = meta.get("files")
    if not isinstance(files, dict) or WEIGHTS not in files:
        raise RunError(f"{path}: no checksums recorded; not a finished attnlab run")
    for name, digest in files.items():
        f = run_dir / name
        if not f.is_file():
            raise RunError(f"{f} is missing")
        if sha256(f) != digest:
            raise RunError(
                f"{f} does not match the checksum in {CONFIG}: the file is corrupt or was changed"
            )
    try:
        spec = get_model(config.model, task=config.task)
        dims = build_dataclass(spec.dims_cls, meta.get("dims", {}), "dims")
    except (ValueError, TypeError) as e:
        raise RunError(f"{path}: {e}") from None
    try:
        artifacts = t.load_artifacts(config.data, run_dir)
    except (ValueError, OSError, RuntimeError) as e:
        raise RunError(str(e) if str(run_dir) in str(e) else f"{run_dir}: {e}") from None
    model_config = config.model_config
    if "pretrained" in {f.name for f in dataclasses.fields(model_config)}:
        # The saved weights replace the pretrained ones: skip loading those twice.
        model_config = dataclasses.replace(model_config, pretrained=False)
    model = create_model(config.model, model_config, dims=dims)
    try:
        load_model(model, str(run_dir / WEIGHTS), device=str(device))
    except (SafetensorError, RuntimeError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RunError(f"{run_dir / WEIGHTS}: cannot load the weights: {first}") from None
    return t.run_class(
        task=t,
        config=config,
        model=model.to(device),
        artifacts=artifacts,
        dims=dims,
        run_dir=run_dir,
        meta=meta,
    )
