"""The csr backend's internals: the sparse matrices it hands to torch.

Its values and gradients against the equations and the reference, on every
device: tests/test_ops.py.
"""
import pytest
import torch

from mmseg_ssanet.ops import sparse_nonlocal_attention as snl
from tests.ops_cases import DEVICES
from tests.ops_cases import random_inputs as _inputs


@pytest.mark.parametrize('device', DEVICES)
def test_sparse_matrices_are_coalesced(device, monkeypatch):
    # Neighbouring sampling points share corners, so a query names one
    # pixel several times. The sparse libraries assume each (row, column)
    # once and columns sorted within a row; cuSPARSE gave products off by
    # the size of the values without it (an H200, 2026-12-04), while the
    # CPU happened to add duplicates up. Every matrix the backend builds,
    # forward and backward (the transposes too), is checked by torch's own
    # invariant check.
    from mmseg_ssanet.ops.backends import csr
    built = []

    def checked(crow, col, values, rows, cols):
        built.append(
            torch.sparse_csr_tensor(
                crow, col, values, size=(rows, cols), check_invariants=True))
        return built[-1]

    monkeypatch.setattr(csr, '_csr', checked)
    q, k, v, o = _inputs(B=2, H=5, W=6, K=9, offset_scale=0.7, device=device)
    out = snl(q, k, v, o, 3, backend='csr')
    torch.autograd.grad(out.sum(), (q, k, v, o))
    assert len(built) >= 6  # 2 forward, 4 backward
    torch.testing.assert_close(
        out, snl(q, k, v, o, 3, backend='reference'), rtol=1e-10, atol=1e-10)


def test_pattern_maps_every_entry_to_its_cell():
    # One row naming pixel 7 three times and pixel 2 once: two cells,
    # sorted; every entry finds its cell, and per-entry values add up
    # per cell.
    from mmseg_ssanet.ops.backends.csr import _Pattern
    pattern = _Pattern(torch.tensor([[7, 2, 7, 7], [0, 1, 2, 3]]), 8)
    assert pattern.crow.tolist() == [0, 2, 6]
    assert pattern.col.tolist() == [2, 7, 0, 1, 2, 3]
    assert pattern.col[pattern.slot].tolist() == [7, 2, 7, 7, 0, 1, 2, 3]
    cells = pattern.scatter(torch.tensor([1., 10., 100., 1000., 1, 2, 3, 4]))
    assert cells.tolist() == [10., 1101., 1., 2., 3., 4.]
    crow_t, col_t, perm = pattern.transpose()
    assert crow_t.tolist() == [0, 1, 2, 4, 5, 5, 5, 5, 6]
    assert col_t.tolist() == [1, 1, 0, 1, 1, 0]
    assert pattern.col[perm].tolist() == [0, 1, 2, 2, 3, 7]
