"""The translate task without training: data settings, deterministic source-disjoint splits,
artifacts through files, batches and the step, translating (empty lines, truncation,
alignments of every preset), scores, and the run folder round trip."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest
import torch

from attnlab.data import DataError
from attnlab.models import create_model
from attnlab.runs import load_run, make_config
from attnlab.runs.folder import save_run
from attnlab.tasks import get_task
from attnlab.tasks.translate import TranslateData, TranslateRun, TruncationWarning

TASK = get_task("translate")
GERMAN = ["Das ist gut.", "Das ist schlecht.", "Ich habe Zeit.", "Er kommt heute.", "Wir gehen."]
ENGLISH = ["That is good.", "That is bad.", "I have time.", "He comes today.", "We go."]


@pytest.fixture(scope="module")
def pair_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("pairs") / "pairs.tsv"
    rows = [f"{d} {i}\t{e} {i}" for i in range(12) for d, e in zip(GERMAN, ENGLISH, strict=True)]
    path.write_text("de\ten\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _data(pair_file, **kw) -> TranslateData:
    base = dict(name=str(pair_file), source_column="de", target_column="en", test_size=6,
                val_size=6, vocab_size=80, min_frequency=1, max_len=12)  # fmt: skip
    return TranslateData(**{**base, **kw})


def _run(pair_file, tmp_path, preset: str, **kw) -> TranslateRun:
    data = _data(pair_file)
    splits = TASK.load_splits(data, seed=0)
    art = TASK.build_artifacts(data, splits, seed=0, log=lambda _: None)
    dims = TASK.dims(art)
    cfg = make_config("translate", data.name, preset, overrides=[
        "data.source_column=de", "data.target_column=en", "data.max_len=12",
        "model.embed_dim=16", *(["model.num_heads=2", "model.encoder_layers=1",
                                 "model.decoder_layers=2", "model.mlp_ratio=2"] if preset == "transformer" else
                                ["model.hidden_dim=16", "model.attn_dim=16"]),
    ])  # fmt: skip
    torch.manual_seed(0)
    model = create_model(preset, cfg.model_config, dims=dims, task="translate")
    return TranslateRun(task=TASK, config=cfg, model=model, artifacts=art, dims=dims,
                        run_dir=tmp_path)  # fmt: skip


def test_data_settings_are_checked():
    with pytest.raises(ValueError, match="tokenizer must be bpe or unigram, got 'char'"):
        TranslateData(tokenizer="char")
    with pytest.raises(ValueError, match="test_size must be a count >= 1, a fraction < 1 or 0"):
        TranslateData(test_size=2.5)
    with pytest.raises(ValueError, match="beam must be >= 1, got 0"):
        TranslateData(beam=0)
    assert TranslateData().sizes() == (1000, 500)
    assert TranslateData(name="zh-en").sizes() == (0.1, 0.1)
    assert TranslateData(test_size=20, val_size=0.2).sizes() == (20, 0.2)


def test_splits_are_deterministic_and_source_disjoint(pair_file):
    data = _data(pair_file)
    a, b = TASK.load_splits(data, seed=0), TASK.load_splits(data, seed=0)
    assert a.test.sources == b.test.sources and len(a.test) == 6 and len(a.val) == 6
    assert not set(a.train.sources) & (set(a.test.sources) | set(a.val.sources))
    assert TASK.load_splits(data, seed=1).test.sources != a.test.sources
    limited = TASK.load_splits(dataclasses.replace(data, limit=30), seed=0)
    assert len(limited.train) + len(limited.val) + len(limited.test) == 30


def test_bad_pair_files_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("de\ten\nGuten Morgen.\tGood morning.\nkein Tab hier\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.tsv:3: line has no tab"):
        TASK.load_splits(
            TranslateData(name=str(bad), source_column="de", target_column="en"), seed=0
        )
    with pytest.raises(DataError, match=r"bad\.tsv:1: missing column 'source'"):
        TASK.load_splits(TranslateData(name=str(bad)), seed=0)
    with pytest.raises(ValueError, match="unknown pair data 'nope'"):
        TASK.load_splits(TranslateData(name="nope"), seed=0)


def test_artifacts_round_trip_and_malformed_files(pair_file, tmp_path):
    data = _data(pair_file)
    splits = TASK.load_splits(data, seed=0)
    art = TASK.build_artifacts(data, splits, seed=0, log=lambda _: None)
    names = TASK.save_artifacts(art, tmp_path)
    assert set(names) == {"source.json", "pair_tokenizer.json", "translate.json"}  # joint
    back = TASK.load_artifacts(data, tmp_path)
    assert TASK.dims(back) == TASK.dims(art) and TASK.dims(art).shared_vocab
    ids = art.tokenizer.encode_source(["Das ist gut. 3"])
    assert back.tokenizer.encode_source(["Das ist gut. 3"]) == ids
    (tmp_path / "translate.json").write_text('{"max_len": "x"}')
    with pytest.raises(ValueError, match=r"translate\.json: not a translation file"):
        TASK.load_artifacts(data, tmp_path)


def test_batches_and_step(pair_file):
    data = _data(pair_file)
    splits = TASK.load_splits(data, seed=0)
    art = TASK.build_artifacts(data, splits, seed=0, log=lambda _: None)
    ds = TASK.dataset(splits.train, art, data)
    batch = TASK.collate(art)([ds[0], ds[1], ds[2]])
    assert batch["src"].shape[0] == 3 and batch["tgt_in"].shape == batch["tgt_out"].shape
    assert (batch["tgt_in"][:, 0] == art.tokenizer.bos_id).all()
    assert batch["src_lengths"].tolist() == [len(ds[i][0]) for i in range(3)]
    assert TASK.lengths(ds)[0] == max(len(ds[0][0]), len(ds[0][1]))
    model = create_model("gru", dims=TASK.dims(art), task="translate")
    out = TASK.step(model, batch, label_smoothing=0.1)
    n_tokens = int((batch["tgt_out"] != 0).sum())
    assert out.loss.dim() == 0 and out.preds.shape[0] == out.target.shape[0] == n_tokens


@pytest.mark.parametrize("preset", ["gru", "gru-bahdanau", "gru-luong", "transformer"])
def test_translate_alignments_empty_lines_and_truncation(pair_file, tmp_path, preset):
    run = _run(pair_file, tmp_path, preset)
    long = " ".join(["Das ist gut."] * 20)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        out = run.translate(["Das ist gut.", "", "   ", long], beam=2, alignment=True)
    assert [w.category for w in said] == [TruncationWarning]
    assert "input 4 has more than 12 tokens" in str(said[0].message)
    assert out[1].text == "" and out[2].text == "" and out[3].truncated
    assert len(out[3].source_tokens) == 13  # 12 subwords and EOS
    t = out[0]
    assert t.source_tokens[-1] == "[EOS]"
    if preset == "gru":
        assert t.attention is None and t.alignment is None
        return
    # transformer: 2 decoder layers of 2 heads; the recurrent decoders: one attention
    assert t.attention.shape[:2] == ((2, 2) if preset == "transformer" else (1, 1))
    assert t.attention.shape[2:] == (len(t.target_tokens), len(t.source_tokens))
    torch.testing.assert_close(t.alignment.sum(-1), torch.ones(len(t.target_tokens)))
    # The recorded attention does not change what is generated.
    assert run.translate(["Das ist gut."], beam=2)[0].text == t.text


def test_translate_refuses_bad_input(pair_file, tmp_path):
    run = _run(pair_file, tmp_path, "gru")
    with pytest.raises(TypeError, match="not one string"):
        run.translate("Das ist gut.")
    with pytest.raises(TypeError, match="text 1 is a int"):
        run.translate(["a", 3])
    with pytest.raises(ValueError, match="beam must be an int >= 1, got 0"):
        run.translate(["a"], beam=0)


def test_evaluate_scores_greedy_and_beam_with_signatures(pair_file, tmp_path):
    run = _run(pair_file, tmp_path, "gru-bahdanau")
    split = TASK.load_splits(run.config.data, seed=0).test
    m = TASK.evaluate(run, split)
    assert m["n"] == 6 and m["beam"] == 5
    assert "tok:13a" in m["bleu_signature"] and "nc:6" in m["chrf_signature"]
    assert 0 <= m["greedy_bleu"] <= 100 and 0 <= m["chrf"] <= 100
    json.dumps(m)
    text = TASK.format_metrics(m, run)
    assert "BLEU" in text and "chrF" in text and m["bleu_signature"] in text
    base = TASK.baseline(run.config.data, TASK.load_splits(run.config.data, seed=0), seed=0)
    assert base["name"] == "copy the source" and 0 <= base["bleu"] <= 100


def test_run_folder_round_trip(pair_file, tmp_path):
    run = _run(pair_file, tmp_path / "a", "transformer")
    folder = tmp_path / "run"
    folder.mkdir()
    save_run(folder, task=TASK, config=run.config, model=run.model, artifacts=run.artifacts,
             dims=run.dims)  # fmt: skip
    back = load_run(folder, task="translate")
    assert isinstance(back, TranslateRun) and back.dims == run.dims
    first = run.translate(GERMAN, beam=3, alignment=True)
    again = back.translate(GERMAN, beam=3, alignment=True)
    assert [t.text for t in first] == [t.text for t in again]
    assert torch.equal(first[0].attention, again[0].attention)
