"""The fused Triton kernels (:mod:`.triton_halo`, the default variants,
and :mod:`.triton_kernels`): the default backend on CUDA.

On CPU tensors it runs under Triton's interpreter (``TRITON_INTERPRET=1``),
which is how it is tested on machines without a GPU. ``triton`` is
imported only when this backend is used, so the operator still needs
torch alone. This module holds the operator, its forward and backward
variants and their launches; :mod:`.triton_launch` the launch sizes,
:mod:`.triton_sums` the ``sorted`` backward's key and value sums and the
``halo`` backward's launch.
"""
import os
import warnings
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from ...features import custom_op, traced_names, triton_missing
from .base import Backend, refuse_double_backward
from .layout import channels_last_like, pixel_rows
from .triton_launch import (accumulator, halo_config, interpreted_table,
                            launch_config, lse_dtype)
from .triton_sums import halo_backward, key_value_grads_in_order


def unavailable(device: torch.device) -> Optional[str]:
    """None if the kernel can run on ``device``, else why not."""
    missing = triton_missing('cpu' if device.type == 'cpu' else 'cuda')
    if missing:
        return missing
    if device.type == 'cuda':
        return None
    if device.type == 'cpu' and os.environ.get('TRITON_INTERPRET') == '1':
        return None
    return (f'the triton kernel runs on CUDA tensors, or on CPU tensors '
            f'under TRITON_INTERPRET=1; got {device}')


# How the forward computes: 'halo' (the default) multiplies query tiles
# by the keys and values of the pixels around them on tensor cores
# (tl.dot) and gathers only corners beyond its margin; 'gather' reads each
# query's 4 K corner rows of keys and values. Both give the same
# log-sum-exp to the backward.
FORWARD_ENV = 'SSANET_TRITON_FORWARD'
FORWARD_VARIANTS = ('gather', 'halo')
DEFAULT_FORWARD = 'halo'


def _variant(env: str, choices: Tuple[str, ...], default: str,
             what: str) -> str:
    variant = os.environ.get(env) or default
    if variant not in choices:
        raise ValueError(f'{env}={variant!r} names no {what} of the triton '
                         f'backend; choose one of {", ".join(choices)}')
    return variant


def forward_variant() -> str:
    """The forward :data:`FORWARD_ENV` selects (``DEFAULT_FORWARD`` when
    unset)."""
    return _variant(FORWARD_ENV, FORWARD_VARIANTS, DEFAULT_FORWARD, 'forward')


# How the backward adds the key and value gradients to the corner pixels:
# 'halo' (the default), every gradient from tiles of queries times the
# keys and values around them (halo_backward), each pixel's key and value
# gradients written once; 'sorted', the (query, point, corner) entries
# sorted by pixel and summed pixel by pixel (key_value_grads_in_order):
# no float atomics, bitwise reproducible; or 'atomic', one float32 atomic
# add per (query, point, corner, channel). Until a GPU has timed them,
# each default is the variant the cost model
# (tools/analysis_tools/triton_traffic.py) ranks first (docs/operator.md).
# Under torch.use_deterministic_algorithms(True), 'atomic' becomes
# 'sorted', and 'halo' takes the sorted sums for its key and value
# gradients where it would need atomics (halo_backward).
BACKWARD_ENV = 'SSANET_TRITON_BACKWARD'
BACKWARD_VARIANTS = ('sorted', 'atomic', 'halo')
DEFAULT_BACKWARD = 'halo'


def backward_variant() -> str:
    """The backward :data:`BACKWARD_ENV` selects (``DEFAULT_BACKWARD``
    when unset)."""
    variant = _variant(BACKWARD_ENV, BACKWARD_VARIANTS, DEFAULT_BACKWARD,
                       'backward')
    if variant == 'atomic' and torch.are_deterministic_algorithms_enabled():
        return 'sorted'
    return variant


_warned_float64 = []


def halo_takes(dtype: torch.dtype, device: torch.device) -> bool:
    """Whether the ``halo`` kernels run on ``dtype`` inputs on ``device``:
    all but float64 on a GPU whose triton cannot compile their float64
    products (triton 2.1.0; :func:`.triton_halo.float64_products_refused`).
    Those take the ``gather`` forward and the ``sorted`` backward, the cost
    model's first choice among the rest, with a warning, once."""
    if dtype != torch.float64:
        return True
    from . import triton_halo
    refused = triton_halo.float64_products_refused(device.type)
    if refused and not _warned_float64:
        _warned_float64.append(refused)
        import triton
        warnings.warn(
            f'triton {triton.__version__} cannot compile the halo kernels\' '
            f'float64 products ({refused}); float64 inputs take the gather '
            f'forward and the sorted backward instead, the cost model\'s '
            f'fastest of the others (docs/operator.md)')
    return refused is None


# The kernels as registered torch operators (torch.library), like the C++
# kernel's: torch.compile(fullgraph=True) and torch.export see ops with
# fake (shape-only) implementations and an autograd formula instead of
# breaking the graph at a kernel launch. CPU: under TRITON_INTERPRET=1.
OP_NAME = 'mmseg_ssanet::snl_triton'


def _forward_rows(q: Tensor, k: Tensor, v: Tensor, off: Tensor,
                  shape: Tuple[int, int, int], kernel_size: List[int],
                  dilation: List[int], scale: float) -> Tuple[Tensor, Tensor]:
    """The forward kernel on pixel rows: output rows in the values' dtype
    (the kernel rounds its float32 sums to it) and each query's
    log-sum-exp; ``shape`` is (B, H, W)."""
    total, cq = q.shape
    C = v.shape[1]
    out = torch.empty(total, C, device=v.device, dtype=v.dtype)
    lse = torch.empty(total, device=v.device, dtype=lse_dtype(v.dtype))
    if forward_variant() == 'halo' and halo_takes(v.dtype, v.device):
        _halo_forward(q, k, v, off, out, lse, shape, kernel_size, dilation,
                      scale)
        return out, lse
    import triton

    from .triton_kernels import snl_forward_kernel
    _, H, W = shape
    config = launch_config(
        'forward',
        cq,
        C,
        kernel_size[0] * kernel_size[1],
        interpreted=interpreted_table(v.device))
    grid = (triton.cdiv(total, config['BLOCK_Q']), )
    snl_forward_kernel[grid](
        q,
        k,
        v,
        off,
        out,
        lse,
        total,
        H,
        W,
        scale,
        CQ=cq,
        C=C,
        KH=kernel_size[0],
        KW=kernel_size[1],
        DH=dilation[0],
        DW=dilation[1],
        ACC=accumulator(v.dtype),
        **config)
    return out, lse


def _halo_forward(q: Tensor, k: Tensor, v: Tensor, off: Tensor, out: Tensor,
                  lse: Tensor, shape: Tuple[int, int,
                                            int], kernel_size: List[int],
                  dilation: List[int], scale: float) -> None:
    """The ``halo`` forward into ``out`` and ``lse``: one program per 8x8
    tile, with [64, halo] float32 scratch tiles of scores and attention
    weights (about 2 x 115 KB a tile for 9x9 points) and p_k in [N, K]."""
    from .triton_halo import snl_halo_forward_kernel
    B, H, W = shape
    n_points = kernel_size[0] * kernel_size[1]
    config = halo_config(q.shape[1], v.shape[1], kernel_size, dilation,
                         interpreted_table(v.device))
    tiles = B * -(-H // config['TILE_H']) * -(-W // config['TILE_W'])
    acc_dtype = lse.dtype
    score = torch.empty(
        tiles * config['TILE_H'] * config['TILE_W'] * config['HALO_PAD'],
        device=v.device,
        dtype=acc_dtype)
    attn = torch.zeros_like(score)
    prob = torch.empty(q.shape[0], n_points, device=v.device, dtype=acc_dtype)
    snl_halo_forward_kernel[(tiles, )](
        q,
        k,
        v,
        off,
        out,
        lse,
        prob,
        score,
        attn,
        H,
        W,
        scale,
        CQ=q.shape[1],
        C=v.shape[1],
        KH=kernel_size[0],
        KW=kernel_size[1],
        DH=dilation[0],
        DW=dilation[1],
        ACC=accumulator(v.dtype),
        WIDEN=v.device.type == 'cpu',
        **config)


@custom_op(OP_NAME, mutates_args=(), device_types=('cuda', 'cpu'))
def snl_triton(query: Tensor, key: Tensor, value: Tensor, offset: Tensor,
               kernel_size: List[int], dilation: List[int],
               scale: float) -> Tuple[Tensor, Tensor]:
    """Forward: the output (channels_last) and each query's log-sum-exp."""
    B, C, H, W = value.shape
    out, lse = _forward_rows(
        *(pixel_rows(x) for x in (query, key, value, offset)), (B, H, W),
        kernel_size, dilation, scale)
    return out.view(B, H, W, C).permute(0, 3, 1, 2), lse


@snl_triton.register_fake
def _(query, key, value, offset, kernel_size, dilation, scale):
    B, C, H, W = value.shape
    return (channels_last_like(value, C),
            value.new_empty(B * H * W, dtype=lse_dtype(value.dtype)))


def _gather_backward(q: Tensor, k: Tensor, v: Tensor, off: Tensor, go: Tensor,
                     lse: Tensor, shape: Tuple[int, int, int],
                     kernel_size: List[int], dilation: List[int], scale: float,
                     variant: str) -> List[Tensor]:
    """The gather backward kernel on pixel rows, the key and value
    gradients by ``variant`` ('atomic' or 'sorted'): gradient rows of
    query, key, value and offset in the accumulator's dtype."""
    import triton

    from .triton_kernels import snl_backward_kernel
    B, H, W = shape
    total, cq = q.shape
    C = v.shape[1]
    acc_dtype = lse.dtype
    grad_q = torch.empty(total, cq, device=q.device, dtype=acc_dtype)
    # the atomics' targets; 'sorted' returns its own sums
    atomic_rows = total if variant == 'atomic' else 0
    grad_k = torch.zeros(atomic_rows, cq, device=q.device, dtype=acc_dtype)
    grad_v = torch.zeros(atomic_rows, C, device=q.device, dtype=acc_dtype)
    grad_off = torch.empty(
        total, off.shape[1], device=q.device, dtype=acc_dtype)
    n_points = kernel_size[0] * kernel_size[1]
    # p_k, the logit gradients and the offset gradient's <q, key_c> terms
    # (the kernel's scratch; the first two feed the sorted sums)
    prob, grad_logit, qk_d = (
        torch.empty(total, n, device=q.device, dtype=acc_dtype)
        for n in (n_points, n_points, 2 * n_points))
    config = launch_config(
        'backward', cq, C, n_points, interpreted=interpreted_table(v.device))
    grid = (triton.cdiv(total, config['BLOCK_Q']), )
    snl_backward_kernel[grid](
        q,
        k,
        v,
        off,
        go,
        lse,
        grad_q,
        grad_k,
        grad_v,
        grad_off,
        prob,
        grad_logit,
        qk_d,
        total,
        H,
        W,
        scale,
        CQ=cq,
        C=C,
        KH=kernel_size[0],
        KW=kernel_size[1],
        DH=dilation[0],
        DW=dilation[1],
        KEY_VALUE_ATOMICS=variant == 'atomic',
        ACC=accumulator(v.dtype),
        **config)
    if variant == 'sorted':
        grad_k, grad_v = key_value_grads_in_order(q, go, off, prob, grad_logit,
                                                  shape, kernel_size, dilation)
    return [grad_q, grad_k, grad_v, grad_off]


@custom_op(
    OP_NAME + '_backward', mutates_args=(), device_types=('cuda', 'cpu'))
def snl_triton_backward(grad_out: Tensor, query: Tensor, key: Tensor,
                        value: Tensor, offset: Tensor, lse: Tensor,
                        kernel_size: List[int], dilation: List[int],
                        scale: float, variant: str) -> List[Tensor]:
    """Gradients of query, key, value and offset (channels_last) by the
    backward ``variant`` (BACKWARD_VARIANTS)."""
    B, C, H, W = value.shape
    rows = [pixel_rows(x) for x in (query, key, value, offset, grad_out)]
    if variant == 'halo' and not halo_takes(value.dtype, value.device):
        variant = 'sorted'
    if variant == 'halo':
        grads = halo_backward(*rows, lse, (B, H, W), kernel_size, dilation,
                              scale,
                              torch.are_deterministic_algorithms_enabled())
    else:
        grads = _gather_backward(*rows, lse, (B, H, W), kernel_size, dilation,
                                 scale, variant)
    return [
        grad.to(x.dtype).view(B, H, W, x.shape[1]).permute(0, 3, 1, 2)
        for grad, x in zip(grads, (query, key, value, offset))
    ]


@snl_triton_backward.register_fake
def _(grad_out, query, key, value, offset, lse, kernel_size, dilation, scale,
      variant):
    return [
        channels_last_like(x, x.shape[1]) for x in (query, key, value, offset)
    ]


def _setup_context(ctx, inputs, output):
    query, key, value, offset, kernel_size, dilation, scale = inputs
    _, lse = output  # the output itself is not needed
    ctx.save_for_backward(query, key, value, offset, lse)
    ctx.geometry = (kernel_size, dilation, scale)


def _backward(ctx, grad_out, _grad_lse):
    grads = snl_triton_backward(grad_out, *ctx.saved_tensors, *ctx.geometry,
                                backward_variant())
    return (*grads, None, None, None)


snl_triton.register_autograd(_backward, setup_context=_setup_context)
refuse_double_backward(snl_triton_backward, 'triton')

# The kernels address rows of pixels as row index x width in int32.
MAX_ROW_ELEMENTS = 2**31


def _check_addressable(query: Tensor, value: Tensor, offset: Tensor) -> None:
    """A ValueError where B*H*W times the widest row (query, value or
    offset channels) reaches 2**31: the kernels' int32 offsets would wrap,
    silently, on a GPU."""
    B, _, H, W = value.shape
    widest = max(query.shape[1], value.shape[1], offset.shape[1])
    if B * H * W * widest >= MAX_ROW_ELEMENTS:
        raise ValueError(
            f'the triton backend addresses B*H*W x channels in int32: '
            f'{B}*{H}*{W} pixels x {widest} channels = {B * H * W * widest} '
            f'reaches 2**31; split the batch, or use backend="csr"')


def attention(query: Tensor, key: Tensor, value: Tensor, offset: Tensor,
              kernel_size: Tuple[int, int], dilation: Tuple[int, int],
              scale: Optional[float]) -> Tensor:
    _check_addressable(query, value, offset)
    out, _ = snl_triton(query, key, value, offset, list(kernel_size),
                        list(dilation), 1.0 if scale is None else float(scale))
    return out


# Inputs may stay in half precision: the kernel accumulates in float32.
BACKEND = Backend(
    name='triton',
    attention=attention,
    unavailable=unavailable,
    half_inputs=True,
    trace_names=traced_names(OP_NAME))
