"""Memory, tested structurally: record every tensor aten ops allocate (a
TorchDispatchMode) and check that the block-sparse paths never allocate Tq x Tk."""

from __future__ import annotations

import torch

from attnlab.bench import PeakMemory
from attnlab.ops import attention, attention_stats, attention_weights
from attnlab.ops import masks as M

N = 1024


def _qkv(b=1, h=2, n=N, d=16):
    return [torch.randn(b, h, n, d, requires_grad=True) for _ in range(3)]


def _no_square(mem: PeakMemory, n: int = N) -> None:
    # the biggest single allocation is far below one (n x n) float matrix
    assert mem.largest < n * n * 4 / 4, (mem.largest, mem.largest_shape)


def test_the_probe_sees_a_dense_path():
    q, k, v = _qkv()
    with PeakMemory() as mem:
        attention(q, k, v, window=(64, 0), backend="math")
    assert mem.largest >= 2 * N * N * 4 and mem.largest_shape[-2:] == (N, N)


def test_window_backend_forward_and_backward_never_allocate_n_by_n():
    q, k, v = _qkv()
    with PeakMemory() as mem:
        out = attention(q, k, v, mask=M.Window(64, 0), backend="blocksparse")
        out.sum().backward()
    _no_square(mem)
    assert mem.largest_shape[-2:] != (N, N)


def test_tile_and_general_paths_never_allocate_n_by_n():
    q, k, v = _qkv(b=2)
    lengths = torch.tensor([N, N // 3])
    for mask in (M.Causal() & M.Padding(lengths), M.Document(torch.arange(N)[None] // 100)):
        with PeakMemory() as mem:
            attention(q, k, v, mask=mask, backend="blocksparse").sum().backward()
        _no_square(mem)
    bias = torch.zeros(1, 1, N, N)  # the user's own dense bias is sliced, never copied whole
    with PeakMemory() as mem:
        attention(q, k, v, mask=bias, window=(32, 0), backend="blocksparse").sum().backward()
    _no_square(mem)


def test_streamed_weights_and_stats_stay_chunk_sized():
    q, k, _ = (t.detach() for t in _qkv(h=4))
    with PeakMemory() as mem:
        w = attention_weights(q, k, causal=True, heads=[1], rows=slice(0, 64), chunk=64)
    assert w.shape == (1, 1, 64, N)
    assert mem.peak < 16 * 64 * N * 4
    with PeakMemory() as mem:
        s = attention_stats(q, k, causal=True, chunk=64)
    assert s.received.shape == (1, 4, N)
    assert mem.largest <= 4 * 64 * N * 4  # one chunk of scores for the 4 heads
    with PeakMemory() as mem:
        attention_stats(q, k, window=(16, 0), chunk=128)
    assert mem.largest < 4 * 128 * 200 * 4  # a window chunk only scores the keys it can see


def test_strict_window_wider_than_the_sequence_stays_out_of_n_by_n():
    q, k, v = (t.detach() for t in _qkv())
    with PeakMemory() as mem:
        attention(q, k, v, window=(5 * N, 0), strict=True)
    _no_square(mem)
