"""The fused CPU kernel (``csrc/snl_cpu.cpp``), built at install time.

Forward and backward are one pass over the query pixels each: sampling
positions, bilinear corners (merged where neighbouring points share them),
dot products, softmax and the weighted sum of values, with the offset
gradient computed in the kernel. See the C++ file for the algorithm.
"""
import importlib
import importlib.util
import os
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

# Another build of the kernel (a single-ISA or sanitizer build made by
# tools/check_kernel.sh) loaded instead of the installed one, for its tests.
BUILD_ENV = 'SSANET_CPP_EXTENSION'


def _load():
    name = __name__.rsplit('.', 2)[0] + '._C'
    path = os.environ.get(BUILD_ENV)
    if not path:  # import_module: the error names the module
        return importlib.import_module(name)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or not os.path.isfile(path):
        raise ImportError(f'{BUILD_ENV}={path!r} is not a built extension')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


try:
    _C = _load()
except ImportError as error:  # not built: pure-PyTorch fallback
    _C, IMPORT_ERROR = None, error
else:
    IMPORT_ERROR = None

BUILD_HINT = ('build it with `pip install --no-build-isolation -e .` (or '
              '`make env`) in the mmseg_ssanet checkout; it needs a C++ '
              'compiler and torch importable at build time')


def unavailable(device: torch.device):
    """None if the kernel can run on ``device``, else why not."""
    if _C is None:
        return f'the fused C++ kernel is not built ({IMPORT_ERROR}); ' \
            f'{BUILD_HINT}'
    if device.type != 'cpu':
        return f'the fused C++ kernel runs on CPU tensors, got {device}'
    return None


def _rows(x: Tensor) -> Tensor:
    """Unit channel stride (pixels as rows); free for channels_last input
    and for channel slices of a channels_last tensor."""
    return x if x.stride(1) == 1 or x.shape[1] == 1 else \
        x.contiguous(memory_format=torch.channels_last)


class SparseAttentionFunction(torch.autograd.Function):

    @staticmethod
    def forward(ctx, query, key, value, offset, kernel_size, dilation, scale):
        query, key, value = _rows(query), _rows(key), _rows(value)
        ctx.save_for_backward(query, key, value, offset)
        ctx.geometry = (*kernel_size, *dilation, scale)
        return _C.forward(query, key, value, offset, *ctx.geometry)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        query, key, value, offset = ctx.saved_tensors
        grads = _C.backward(grad_out, query, key, value, offset,
                            *ctx.geometry, *ctx.needs_input_grad[:4])
        return (*grads, None, None, None)


# pybind functions are opaque to dynamo: run them eagerly under
# torch.compile (a graph break), compile the rest.
@torch.compiler.disable
def attention(query: Tensor, key: Tensor, value: Tensor, offset: Tensor,
              kernel_size: Tuple[int, int], dilation: Tuple[int, int],
              scale: Optional[float]) -> Tensor:
    return SparseAttentionFunction.apply(
        query, key, value, offset, kernel_size, dilation,
        1.0 if scale is None else float(scale))
