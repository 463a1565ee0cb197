"""Task families: what each supplies to the training engine, the run folder and the views.

A task family is one file in this package holding a :class:`~attnlab.tasks.base.Task`
subclass (its data, the dims its models are built with, the training step and metrics,
evaluation, prediction and report sections) and an entry in :data:`TASKS` below. The
entries are plain data, so listing tasks and building the command line import no torch.

Example:
    >>> from attnlab.tasks import get_task
    >>> get_task("text").name
    'text'
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from attnlab.tasks.base import Task

__all__ = ["TASKS", "Flag", "TaskInfo", "get_task", "list_tasks"]


@dataclass(frozen=True)
class Flag:
    """A command-line flag of ``attnlab train TASK`` that sets one data setting (to the
    flag's value, or to ``const`` for a switch that takes none)."""

    flag: str
    setting: str
    help: str
    const: str | None = None


@dataclass(frozen=True)
class TaskInfo:
    """A registered task family.

    Attributes:
        name: the name on the command line (``attnlab train NAME``).
        module: the module holding its ``TASK`` instance.
        description: one line for help texts.
        default_data: data set used when ``--data`` is not given.
        flags: extra ``attnlab train NAME`` flags mapped to data settings.
    """

    name: str
    module: str
    description: str
    default_data: str
    flags: tuple[Flag, ...] = ()


TASKS: dict[str, TaskInfo] = {
    info.name: info
    for info in (
        TaskInfo(
            "text",
            "attnlab.tasks.text",
            "text classification",
            "mr",
            (
                Flag("--test-data", "data.test_file", "separate test file (default: a split)"),
                Flag("--text-column", "data.text_column", "text column of a data file"),
                Flag("--label-column", "data.label_column", "label column of a data file"),
            ),
        ),
        TaskInfo(
            "caption",
            "attnlab.tasks.caption",
            "image captioning with attention (pointing game)",
            "digits-caption",
        ),
        TaskInfo(
            "translate",
            "attnlab.tasks.translate",
            "machine translation with attention (BLEU, alignments)",
            "de-en",
            (
                Flag("--source-column", "data.source_column", "source column of a pair file"),
                Flag("--target-column", "data.target_column", "target column of a pair file"),
                Flag(
                    "--source-lang",
                    "data.source_lang",
                    "source language of a pair file (zh: characters)",
                ),
                Flag("--target-lang", "data.target_lang", "target language of a pair file"),
            ),
        ),
        TaskInfo(
            "image",
            "attnlab.tasks.image",
            "image classification (CNN with SE/CBAM, Vision Transformer)",
            "fashion-mnist",
            (
                Flag(
                    "--strict-data",
                    "data.strict",
                    "image folders: refuse unreadable files (listing them all) instead of "
                    "skipping each with a warning",
                    const="true",
                ),
            ),
        ),
    )
}

_LOADED: dict[str, Task] = {}


def get_task(name: str) -> Task:
    """The task called ``name``.

    Raises:
        ValueError: unknown name (the message lists the tasks).
    """
    if not isinstance(name, str) or name not in TASKS:
        raise ValueError(f"unknown task {name!r}; tasks: {', '.join(TASKS)}")
    if name not in _LOADED:
        _LOADED[name] = importlib.import_module(TASKS[name].module).TASK
    return _LOADED[name]


def list_tasks() -> list[TaskInfo]:
    """Every registered task family (no module is imported)."""
    return list(TASKS.values())
