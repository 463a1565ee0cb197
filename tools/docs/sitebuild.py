"""What the attnlab site adds to an MkDocs build (wired in by ``hooks.py``).

* Every English page has its Chinese twin and the other way round, or the build fails.
* Every page's ``python`` blocks run during the build, pages in navigation order in one working
  folder (as a reader following the site would run them); a failing block fails the build.
  Pages marked ``notebook: true`` run as Jupyter notebooks in a real kernel instead, and their
  ``.ipynb`` is written next to the page.
* The figures a page links under ``figures/`` are the files its code wrote: they are added to
  the site, never committed.
* KaTeX (math) and the iframe-worker shim (offline search from ``file://``) come from
  ``tools/docs/node_modules`` (``npm ci --prefix tools/docs``), so the site loads nothing from
  the network.

A Chinese page whose code has the same syntax tree as its English twin (only comments differ)
reuses the English run instead of running again. Results are cached for the life of the
process, so ``mkdocs serve`` reruns only the pages whose code changed.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import docpages as pages
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import get_plugin_logger
from mkdocs.structure.files import File, Files

log = get_plugin_logger("attnlab-site")

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
# (source folder under node_modules, site folder, files taken)
ASSETS = [
    (
        "katex/dist",
        "assets/katex",
        ["katex.min.js", "katex.min.css", "contrib/auto-render.min.js", "fonts/*"],
    ),
    ("iframe-worker/shim", "assets/iframe-worker", ["index.js"]),
]
SHIM = "assets/iframe-worker/index.js"
# torch threads of the page code (ATTNLAB_DOCS_THREADS; the build runs many small ops)
THREADS = int(os.environ.get("ATTNLAB_DOCS_THREADS", "1"))


@dataclass
class PageRun:
    figures: dict[str, bytes]
    seconds: float


@dataclass
class Runner:
    """Runs pages in one working folder and remembers the results."""

    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="attnlab-docs-")))
    results: dict[tuple, PageRun] = field(default_factory=dict)

    def __post_init__(self) -> None:
        atexit.register(shutil.rmtree, self.workdir, True)

    def run(self, src_uri: str, text: str) -> PageRun:
        notebook = pages.is_notebook(text)
        blocks = pages.python_blocks(text)
        try:
            key = (pages.twin_of(src_uri) if pages.language_of(src_uri) == "zh" else src_uri,
                   notebook, pages.code_key(blocks))  # fmt: skip
        except SyntaxError as e:
            raise PluginError(f"{src_uri}: python block does not parse: {e}") from None
        if key in self.results:
            return self.results[key]
        start = time.time_ns()
        t0 = time.perf_counter()
        if notebook:
            self._run_notebook(src_uri, text)
        else:
            self._run_blocks(src_uri, blocks)
        figures = {}
        for name in pages.linked_figures(text, src_uri):
            path = self.workdir / name
            if not path.is_file() or path.stat().st_mtime_ns < start:
                raise PluginError(
                    f"{src_uri} shows figures/{name}, but its code did not write {name} "
                    "(save it with attnlab.viz.save_figure(fig, NAME) in a python block)"
                )
            figures[name] = path.read_bytes()
        run = PageRun(figures, time.perf_counter() - t0)
        self.results[key] = run
        log.info(f"ran {src_uri} in {run.seconds:.1f} s")
        return run

    def _run_blocks(self, src_uri: str, blocks: list[pages.Block]) -> None:
        import torch

        # Page code is many small ops: one thread is faster than two fighting for the cores.
        torch.set_num_threads(THREADS)
        namespace: dict = {"__name__": "__main__"}
        out = io.StringIO()
        for block in blocks:
            code = compile(block.code, f"docs/{src_uri}, python block at line {block.line}", "exec")
            try:
                with _cwd(self.workdir), contextlib.redirect_stdout(out):
                    exec(code, namespace)
            except BaseException as e:
                raise PluginError(
                    f"docs/{src_uri}: the python block at line {block.line} failed:\n"
                    + "".join(traceback.format_exception(e))
                ) from None
            finally:
                _close_figures()

    def _run_notebook(self, src_uri: str, text: str) -> None:
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError

        nb = make_notebook(text, src_uri)
        os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))  # read by the kernel's torch
        # The kernel starts in the working folder: give it the attnlab this build imports
        # (a relative PYTHONPATH such as `src` would point elsewhere there).
        import attnlab

        here = str(Path(attnlab.__file__).resolve().parents[1])
        paths = [
            str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p
        ]
        os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([here, *paths]))
        client = NotebookClient(
            nb,
            timeout=600,
            kernel_name="python3",
            resources={"metadata": {"path": str(self.workdir)}},
        )
        try:
            client.execute()
        except CellExecutionError as e:
            raise PluginError(f"docs/{src_uri}: a notebook cell failed:\n{e}") from None


def make_notebook(text: str, src_uri: str):
    """The page as an (unexecuted) notebook, built by jupytext from the page's Markdown."""
    import jupytext

    nb = jupytext.reads(pages.notebook_markdown(text, src_uri), fmt="md")
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    for cell in nb.cells:
        cell.metadata.pop("lines_to_next_cell", None)
    return nb


@contextlib.contextmanager
def _cwd(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _close_figures() -> None:
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


RUNNER: Runner | None = None


def runner() -> Runner:
    global RUNNER
    if RUNNER is None:
        os.environ.setdefault("MPLBACKEND", "Agg")
        RUNNER = Runner()
    return RUNNER


def nav_order(nav) -> list[str]:
    """Page paths in the order the navigation lists them."""
    out: list[str] = []
    for item in nav or []:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            for value in item.values():
                out.extend(nav_order(value) if isinstance(value, list) else [value])
    return [p for p in out if isinstance(p, str) and p.endswith(".md")]


# ---------------------------------------------------------------- MkDocs events


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    missing = [src for src, _, _ in ASSETS if not (NODE_MODULES / src).is_dir()]
    if missing:
        raise PluginError(
            f"{NODE_MODULES} lacks {', '.join(missing)}: run `npm ci --prefix tools/docs` "
            "(make docs does) to install the bundled front-end files"
        )
    # The offline plugin adds a polyfill from a CDN; serve the same file from the site.
    polyfills = config.extra.get("polyfills", [])
    config.extra["polyfills"] = [SHIM if "iframe-worker" in str(p) else p for p in polyfills]
    return config


def check_twins(files: Files, config: MkDocsConfig) -> Files:
    docs = Path(config.docs_dir)
    uris = [
        f.src_uri for f in files if f.abs_src_path and Path(f.abs_src_path).is_relative_to(docs)
    ]
    missing = pages.missing_twins(uris)
    if missing:
        raise PluginError(
            "every page needs its twin in the other language: "
            + "; ".join(f"{page} has no {twin}" for page, twin in missing)
        )
    return files


def add_generated(files: Files, config: MkDocsConfig) -> Files:
    order = {p: i for i, p in enumerate(nav_order(config.nav))}
    docs = [f for f in files.documentation_pages() if f.abs_src_path]
    docs.sort(
        key=lambda f: (order.get(getattr(f, "norm_src_uri", f.src_uri), len(order)), f.src_uri)
    )
    owners: dict[str, str] = {}
    for f in docs:
        text = Path(f.abs_src_path).read_text(encoding="utf-8")
        run = runner().run(f.src_uri, text)
        for name, data in run.figures.items():
            uri = f"figures/{name}"
            owner = pages.twin_of(f.src_uri) if pages.language_of(f.src_uri) == "zh" else f.src_uri
            if owners.setdefault(uri, owner) != owner:
                raise PluginError(f"{uri} is made by both {owners[uri]} and {owner}: rename one")
            if files.get_file_from_path(uri) is None:
                files.append(File.generated(config, uri, content=data))
        if pages.is_notebook(text):
            nb = make_notebook(text, f.src_uri)
            import nbformat

            files.append(
                File.generated(config, pages.notebook_name(f.src_uri), content=nbformat.writes(nb))
            )
    for src, dest, patterns in ASSETS:
        root = NODE_MODULES / src
        for pattern in patterns:
            for path in sorted(root.glob(pattern)):
                uri = f"{dest}/{path.relative_to(root).as_posix()}"
                if files.get_file_from_path(uri) is None:
                    files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
