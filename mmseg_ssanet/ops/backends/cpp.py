"""The fused CPU kernel (``csrc/snl_cpu.cpp``, whose header describes the
algorithm), built at install time; registered as a torch op here."""
import importlib
import importlib.util
import os
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from ...features import custom_op, traced_names
from .base import Backend, refuse_double_backward
from .layout import channels_last_like, unit_channel_stride

# Another build of the kernel (a single-ISA or sanitizer build made by
# .dev_scripts/check_kernel.py) loaded instead of the installed one, for
# its tests.
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
    if _C is None and 'undefined symbol' in str(IMPORT_ERROR):
        return (f'the fused C++ kernel was built against another torch than '
                f'the installed {torch.__version__} ({IMPORT_ERROR}); re'
                f'{BUILD_HINT}')
    if _C is None:
        return f'the fused C++ kernel is not built ({IMPORT_ERROR}); ' \
            f'{BUILD_HINT}'
    if device.type != 'cpu':
        return f'the fused C++ kernel runs on CPU tensors, got {device}'
    return None


# The kernel as registered torch operators (torch.library): dynamo and
# torch.export see an op with a fake (shape-only) implementation and an
# autograd formula, so torch.compile(fullgraph=True) traces through the
# SNL block instead of breaking the graph at an opaque pybind call.
# Outputs and gradients are channels_last, as the kernel writes them.
OP_NAME = 'mmseg_ssanet::snl_cpu'


@custom_op(OP_NAME, mutates_args=(), device_types='cpu')
def snl_cpu(query: Tensor, key: Tensor, value: Tensor, offset: Tensor,
            kernel_size: List[int], dilation: List[int],
            scale: float) -> Tensor:
    """Forward of the fused kernel; query/key/value need unit channel
    stride (``unit_channel_stride``)."""
    return _C.forward(query, key, value, offset, *kernel_size, *dilation,
                      scale)


@snl_cpu.register_fake
def _(query, key, value, offset, kernel_size, dilation, scale):
    return channels_last_like(value, value.shape[1])


@custom_op(OP_NAME + '_backward', mutates_args=(), device_types='cpu')
def snl_cpu_backward(grad_out: Tensor, query: Tensor, key: Tensor,
                     value: Tensor, offset: Tensor, kernel_size: List[int],
                     dilation: List[int], scale: float,
                     needs: List[bool]) -> List[Tensor]:
    """Gradients of query, key, value and offset; an empty tensor where
    ``needs`` says it is not wanted."""
    grads = _C.backward(grad_out, query, key, value, offset, *kernel_size,
                        *dilation, scale, *needs)
    return [
        g if g is not None else x.new_empty(0)
        for g, x in zip(grads, (query, key, value, offset))
    ]


@snl_cpu_backward.register_fake
def _(grad_out, query, key, value, offset, kernel_size, dilation, scale,
      needs):
    return [
        channels_last_like(x, x.shape[1]) if need else x.new_empty(0)
        for x, need in zip((query, key, value, offset), needs)
    ]


def _setup_context(ctx, inputs, output):
    query, key, value, offset, kernel_size, dilation, scale = inputs
    ctx.save_for_backward(query, key, value, offset)
    ctx.geometry = (kernel_size, dilation, scale)


def _backward(ctx, grad_out):
    needs = list(ctx.needs_input_grad[:4])
    grads = snl_cpu_backward(grad_out, *ctx.saved_tensors, *ctx.geometry,
                             needs)
    return (*(g if need else None
              for g, need in zip(grads, needs)), None, None, None)


snl_cpu.register_autograd(_backward, setup_context=_setup_context)
refuse_double_backward(snl_cpu_backward, 'cpp')


def attention(query: Tensor, key: Tensor, value: Tensor, offset: Tensor,
              kernel_size: Tuple[int, int], dilation: Tuple[int, int],
              scale: Optional[float]) -> Tensor:
    return snl_cpu(
        unit_channel_stride(query), unit_channel_stride(key),
        unit_channel_stride(value), offset, list(kernel_size), list(dilation),
        1.0 if scale is None else float(scale))


BACKEND = Backend(
    name='cpp',
    attention=attention,
    unavailable=unavailable,
    trace_names=traced_names(OP_NAME))
