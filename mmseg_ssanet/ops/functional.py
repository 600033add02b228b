"""``sparse_nonlocal_attention``: the SNL operator's small front end.

It checks its inputs, leaves autocast (the softmax runs in float32 at least),
and hands the work to one of the interchangeable backends
(:mod:`.backends`), by default the fastest that can run on the inputs'
device:

* CPU: ``'cpp'``, the fused C++ kernel; where it is not built, ``'csr'``
  with a one-time warning that says how to build it;
* CUDA: ``'triton'``, the fused Triton kernel; without triton, ``'csr'``
  with a one-time warning;
* other devices: ``'reference'``.

``backend=`` forces one; one that cannot run on the device raises and
says why. Only torch is imported here: the operator works without mmcv,
mmengine or mmseg.
"""
import warnings
from contextlib import nullcontext
from numbers import Integral, Real
from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from ..features import autocast_enabled, has_forward_tangent
from .backends import BACKENDS, reference
from .backends.base import no_output

IntPair = Union[int, Tuple[int, int]]
# device type -> (preferred backend, fallback)
DEFAULT_BACKENDS = {'cpu': ('cpp', 'csr'), 'cuda': ('triton', 'csr')}
_warned = set()


def as_pair(value: IntPair, name: str) -> Tuple[int, int]:
    if isinstance(value, Integral):
        pair = (value, value)
    elif isinstance(value, (tuple, list)):
        pair = tuple(value)
    else:
        pair = ()
    if len(pair) != 2 or not all(
            isinstance(v, Integral) and not isinstance(v, bool) for v in pair):
        raise TypeError(f'{name} must be an int or a pair of ints, got '
                        f'{value!r}')
    if min(pair) <= 0:
        raise ValueError(f'{name} must be positive, got {value!r}')
    return int(pair[0]), int(pair[1])


def check_backend(backend: Optional[str]) -> Optional[str]:
    """``backend`` itself (None: chosen by device); ValueError if unknown."""
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f'unknown backend {backend!r}; choose from '
                         f'{sorted(BACKENDS)} or None (by device)')
    return backend


def resolve_backend(backend: Optional[str], device: torch.device) -> str:
    """The backend that runs on ``device``: ``backend`` if given (an error
    naming why if it cannot), else the device's default."""
    if check_backend(backend) is not None:
        reason = BACKENDS[backend].unavailable(device)
        if reason:
            raise RuntimeError(f'SNL backend {backend!r} cannot run here: '
                               f'{reason}')
        return backend
    preferred, fallback = DEFAULT_BACKENDS.get(device.type,
                                               (None, 'reference'))
    reason = preferred and BACKENDS[preferred].unavailable(device)
    if preferred and not reason:
        return preferred
    if preferred and (device.type, preferred) not in _warned:
        _warned.add((device.type, preferred))
        warnings.warn(
            f'SNL operator on {device.type}: using the slower '
            f'pure-PyTorch {fallback!r} backend because {reason}',
            stacklevel=3)
    return fallback


def _check_inputs(query, key, value, offset, num_points):
    named = dict(query=query, key=key, value=value, offset=offset)
    for name, x in named.items():
        if not isinstance(x, Tensor):
            raise TypeError(f'{name} must be a torch.Tensor, got '
                            f'{type(x).__name__}')
        if not x.is_floating_point():
            raise TypeError(f'{name} must be a floating point tensor, got '
                            f'{x.dtype}')
        if x.dim() != 4:
            raise ValueError(f'{name} must be 4-D [B, C, H, W], got shape '
                             f'{tuple(x.shape)}')
    b, _, h, w = value.shape
    for name, x in named.items():
        if x.shape[0] != b or tuple(x.shape[2:]) != (h, w):
            raise ValueError(
                f'{name} has batch and spatial size {x.shape[0]} x '
                f'{tuple(x.shape[2:])}, value has {b} x {(h, w)}; they must '
                f'match')
    if query.shape[1] != key.shape[1]:
        raise ValueError(f'query and key must have the same channels, got '
                         f'{query.shape[1]} and {key.shape[1]}')
    if offset.shape[1] != 2 * num_points:
        raise ValueError(
            f'offset must have 2 * K = {2 * num_points} channels for a '
            f'{num_points}-point kernel, got {offset.shape[1]}')
    for name, x in named.items():  # a loop: torch 2.1's dynamo cannot
        if x.device != value.device:  # trace a set comprehension
            raise ValueError(f'inputs are on different devices: {name} on '
                             f'{x.device}, value on {value.device}')


def sparse_nonlocal_attention(query: Tensor,
                              key: Tensor,
                              value: Tensor,
                              offset: Tensor,
                              kernel_size: IntPair,
                              dilation: IntPair = 1,
                              scale: Optional[float] = None,
                              backend: Optional[str] = None) -> Tensor:
    """Sparse non-local attention (SSANet, arXiv 2109.01915, eqs. 4-7).

    Each query pixel attends to K = kh * kw keys sampled by bilinear
    interpolation (zeros outside the map) at a kh x kw grid around it
    (spaced by ``dilation``) shifted by learned offsets; the output is the
    softmax-weighted sum of the values sampled at the same points.

    Args:
        query, key: ``[B, Cq, H, W]``.
        value: ``[B, C, H, W]``.
        offset: ``[B, 2K, H, W]``, (dy, dx) in pixels per sampling point,
            row-major over the kernel grid, as mmcv's deformable conv.
        kernel_size: kh, kw (int or pair).
        dilation: spacing of the initial grid (int or pair).
        scale: optional factor on the logits; the paper uses none.
        backend: ``'cpp'``, ``'triton'``, ``'csr'`` or ``'reference'``;
            None (default): the fastest that runs on the inputs' device.

    Returns:
        ``[B, C, H, W]``, in ``value``'s dtype.

    Every backend follows the same rules at the edges (tested on each):

    * **Empty inputs** (B, H, W or C is 0): the empty ``[B, C, H, W]``
      output, and zero gradients of each input's shape, as torch's own ops
      give. ``Cq = 0`` is not empty: every logit is 0, so each query
      averages its K sampled values.
    * **Non-finite positions** (a NaN or +-inf offset, or a position that
      overflows): the query that samples there outputs NaN in every
      channel, and its query and offset gradients are NaN; NaN can also
      reach the key and value gradients at the pixels it samples. Other
      queries are unaffected. Nothing is dropped silently: a diverging run
      shows in its loss. A NaN or inf in a pixel of query, key or value
      reaches the outputs (and gradients) of the queries that have that
      pixel among the four corners of one of their points, as
      ``grid_sample``, and no others (one exception is open: docs/
      operator.md, "Edges").
    * **Offsets far outside the map** (finite): those points sample zeros,
      as ``grid_sample`` with zero padding.

    Derivatives: first order on every backend (reverse mode). Second order
    (differentiating the gradients, after ``create_graph=True``) on
    ``reference`` only (where torch's grid_sample has a double backward:
    not torch 2.1): the others raise when asked. Forward-mode AD on
    none: NotImplementedError.
    """
    kernel_size = as_pair(kernel_size, 'kernel_size')
    dilation = as_pair(dilation, 'dilation')
    _check_inputs(query, key, value, offset, kernel_size[0] * kernel_size[1])
    if scale is not None and (not isinstance(scale, Real)
                              or isinstance(scale, bool)):
        raise TypeError(f'scale must be a number or None, got {scale!r}')
    if has_forward_tangent(query, key, value, offset):
        raise NotImplementedError(
            'the SNL operator has no forward-mode AD (forward_ad, '
            'torch.func.jvp) on any backend; use reverse mode (backward)')
    backend = resolve_backend(backend, value.device)
    if value.numel() == 0:
        return no_output(query, key, value, offset)
    implementation = BACKENDS[backend]
    # Logits and softmax in float32 at least: under autocast the 1x1 convs
    # hand us fp16/bf16, whose dot products over Cq channels overflow.
    # Backends that accumulate in float32 themselves take them as they are.
    dtype = torch.promote_types(value.dtype, torch.float32)
    if implementation.half_inputs and value.dtype in (torch.float16,
                                                      torch.bfloat16):
        dtype = value.dtype
    # (only when autocast is on: a traced graph then stays flat)
    with torch.autocast(value.device.type, enabled=False) if \
            autocast_enabled(value.device.type) else nullcontext():
        out = implementation.attention(
            query.to(dtype), key.to(dtype), value.to(dtype),
            offset.to(torch.promote_types(dtype, torch.float32)), kernel_size,
            dilation, scale)
    return out.to(value.dtype)


def sparse_nonlocal_affinity(
        query: Tensor,
        key: Tensor,
        offset: Tensor,
        kernel_size: IntPair,
        dilation: IntPair = 1,
        scale: Optional[float] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """Where each query samples, and the weight of each sample.

    For inspection and pictures (eqs. 4-6, reference path, float32 at
    least). Returns ``(t_y, t_x, weight)``, each ``[B, K, H, W]``: sampling
    coordinates in feature pixels and the softmax weights S.
    """
    kernel_size = as_pair(kernel_size, 'kernel_size')
    dilation = as_pair(dilation, 'dilation')
    _check_inputs(query, key, key[:, :1], offset,
                  kernel_size[0] * kernel_size[1])
    dtype = torch.promote_types(key.dtype, torch.float32)
    with torch.autocast(key.device.type, enabled=False):
        t_y, t_x, affinity = reference.attention_weights(
            query.to(dtype), key.to(dtype), offset.to(dtype), kernel_size,
            dilation, scale)
    B, K, H, W = t_y.shape
    return t_y, t_x, affinity.transpose(1, 2).reshape(B, K, H, W)
