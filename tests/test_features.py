"""mmseg_ssanet.features: each way the package adapts to what the installed
torch can do, checked on this torch; the older torch's path (the kernels
through autograd.Function) is also forced here, in a fresh process, so
both paths run on every stack (CI runs this file on torch 2.1 too)."""
import io

import pytest
import torch

from mmseg_ssanet import features
from tests.ops_cases import fresh_python

FUNCTION_OP_SCRIPT = r'''
import importlib.util, os, sys, types
import torch
# the package root bare (its __init__ would load the kernels), then the
# flag set as on torch < 2.4 before they load
spec = importlib.util.find_spec('mmseg_ssanet')
bare = types.ModuleType('mmseg_ssanet')
bare.__path__ = list(spec.submodule_search_locations)
sys.modules['mmseg_ssanet'] = bare
from mmseg_ssanet import features
features.HAS_CUSTOM_OP = False
from mmseg_ssanet.ops import sparse_nonlocal_attention as snl
from mmseg_ssanet.ops.backends import cpp
from tests.ops_cases import random_inputs
assert isinstance(cpp.snl_cpu, features.FunctionOp)
q, k, v, o = random_inputs(B=2, Cq=3, C=4, H=4, W=5, K=9, offset_scale=1.5)
out = snl(q, k, v, o, 3, scale=0.7, backend='cpp')
want = snl(q, k, v, o, 3, scale=0.7, backend='reference')
torch.testing.assert_close(out, want, rtol=1e-10, atol=1e-10)
weight = torch.randn_like(out)
for a, b in zip(torch.autograd.grad((out * weight).sum(), (q, k, v, o)),
                torch.autograd.grad((want * weight).sum(), (q, k, v, o))):
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
assert torch.autograd.gradcheck(
    lambda *x: snl(*x, 3, scale=0.7, backend='cpp'), (q, k, v, o))
# only the inputs that need a gradient get one
q2 = q.detach()
out = snl(q2, k, v, o.detach(), 3, backend='cpp')
gk, gv = torch.autograd.grad(out.sum(), (k, v))
assert gk.shape == k.shape and gv.shape == v.shape
# keyword arguments reach the kernel (Function.apply takes none)
direct = cpp.snl_cpu(q2.contiguous(memory_format=torch.channels_last),
                     k.detach().contiguous(memory_format=torch.channels_last),
                     v.detach().contiguous(memory_format=torch.channels_last),
                     o.detach(), kernel_size=[3, 3], dilation=[1, 1],
                     scale=1.0)
torch.testing.assert_close(direct, snl(q2, k, v, o, 3, backend='reference'))
# a second derivative is refused there too, not silently None
g, = torch.autograd.grad(snl(q, k, v, o, 3, backend='cpp').sum(), v,
                         create_graph=True)
try:
    torch.autograd.grad(g.square().sum(), v)
except RuntimeError as err:
    assert "backend 'cpp' has no double backward" in str(err), err
else:
    raise AssertionError('double backward through cpp did not raise')
print('FUNCTION OPS OK')
'''


def test_kernels_through_autograd_function_match_the_reference():
    # The path torch < 2.4 takes (no torch.library.custom_op): the C++
    # kernel wrapped in an autograd.Function with the same backward
    # formula, values and float64 gradients against the reference.
    proc = fresh_python(FUNCTION_OP_SCRIPT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'FUNCTION OPS OK' in proc.stdout


def test_kernels_are_torch_ops_where_torch_has_custom_op():
    from mmseg_ssanet.ops.backends import cpp, triton
    for op in (cpp.snl_cpu, cpp.snl_cpu_backward, triton.snl_triton):
        assert isinstance(op, features.FunctionOp) != features.HAS_CUSTOM_OP
    if features.HAS_CUSTOM_OP:
        assert hasattr(torch.ops.mmseg_ssanet, 'snl_cpu')


@pytest.mark.parametrize('device, dtype', [('cpu', torch.bfloat16)])
def test_autocast_enabled_follows_torch(device, dtype):
    assert not features.autocast_enabled(device)
    with torch.autocast(device, dtype=dtype):
        assert features.autocast_enabled(device)
        assert not features.autocast_enabled('cuda')
    assert not features.autocast_enabled(device)


def test_weights_only_probe_matches_a_plain_load(tmp_path):
    # the shim for mmengine's checkpoints applies exactly where a
    # plain torch.load refuses classes outside the allow-list
    from fractions import Fraction
    path = tmp_path / 'other.pth'
    torch.save({'x': Fraction(1, 3)}, path)
    try:
        torch.load(path)
        refused = False
    except Exception:  # noqa: BLE001  (the exception type varies)
        refused = True
    assert features.loads_weights_only_by_default() is refused


def test_load_trusted_reads_what_mmengine_writes(tmp_path):
    from mmseg_ssanet.utils.checkpoint_allowlist import \
        mmengine_checkpoint_globals
    from tests.conftest import training_like_checkpoint
    path = str(tmp_path / 'train.pth')
    model = training_like_checkpoint(path)
    loaded = features.load_trusted(path, mmengine_checkpoint_globals())
    assert 'message_hub' in loaded
    torch.testing.assert_close(loaded['state_dict']['weight'],
                               model.weight.detach())


def test_onnx_export_options_are_accepted():
    # the options are the exporter's own keywords on this torch
    import inspect
    pytest.importorskip('onnx', reason='the ONNX exporter needs onnx')
    parameters = inspect.signature(torch.onnx.export).parameters
    assert set(features.onnx_export_options()) <= set(parameters)
    buffer = io.BytesIO()
    torch.onnx.export(
        torch.nn.Linear(2, 3), (torch.randn(1, 2), ), buffer,
        **features.onnx_export_options())
    assert buffer.getvalue()[:2]  # a model was written


def test_sdpa_backend_restricts_to_math():
    q = torch.randn(1, 2, 8, 4)
    with features.sdpa_backend('MATH'):
        out = torch.nn.functional.scaled_dot_product_attention(q, q, q)
    torch.testing.assert_close(
        out,
        torch.softmax(q @ q.transpose(-1, -2) / 2, -1) @ q)
