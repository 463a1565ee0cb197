"""CLI of the text-classification commands: --help, ls, data list, errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from attnlab.cli.main import main

COMMANDS = [
    ["ls"],
    ["data"],
    ["data", "list"],
    ["data", "install"],
    ["train"],
    ["train", "text"],
    ["eval"],
    ["predict"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: attnlab " + " ".join(argv))


def test_train_text_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "text", "--help"])
    out = capsys.readouterr().out
    for opt in ("--data", "--model", "--epochs", "--set", "--out", "--report", "--resume"):
        assert opt in out


def test_help_does_not_import_torch():
    code = (
        "import sys; from attnlab.cli.main import build_parser; build_parser(); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ls_lists_presets_and_data(capsys):
    assert main(["ls"]) == 0
    out = capsys.readouterr().out
    for name in ("bilstm-attn", "transformer", "minilm", "mr", "zh-reviews"):
        assert name in out


def test_data_list(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["name", "examples", "installed", "package"]
    assert any(line.startswith("mr ") and "10566" in line for line in out)


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["data", "install", "nope"]) == 2
    assert "unknown data set 'nope'" in capsys.readouterr().err
    argv = ["train", "text", "--data", "mr", "--set", "train.lr=fast", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "cannot set train.lr='fast': expected a value of type float" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "none"), "hi"]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nok,a\n,b\n", encoding="utf-8")
    assert main(["train", "text", "--data", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert f"{bad}:3: empty text" in capsys.readouterr().err
