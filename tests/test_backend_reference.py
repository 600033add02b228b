"""The reference backend's internals: the form it exports to ONNX."""
import torch

from tests.ops_cases import random_inputs as _inputs


def test_reference_exported_form_takes_one_point_at_a_time_alike():
    # What ONNX export traces (no [B, C, N, K] tensor): the same values and
    # gradients as the reference, a NaN offset included.
    from mmseg_ssanet.ops.backends.reference import (attention,
                                                     attention_by_point)
    q, k, v, o = _inputs(B=2, Cq=4, C=3, H=5, W=6, K=15, offset_scale=2.5)
    with torch.no_grad():
        o[1, 4, 2, 3] = float('nan')
    results = []
    for form in (attention, attention_by_point):
        xs = [x.detach().requires_grad_() for x in (q, k, v, o)]
        out = form(*xs, (3, 5), (2, 1), 0.5)
        grads = torch.autograd.grad(out.nan_to_num().sum(), xs)
        results.append([out, *grads])
    for a, b in zip(*results):
        assert torch.equal(a.isnan(), b.isnan())
        torch.testing.assert_close(
            a.nan_to_num(), b.nan_to_num(), rtol=1e-12, atol=1e-12)
