"""The fused Triton kernel (:mod:`.triton_kernels`): the default on CUDA.

On CPU tensors it runs under Triton's interpreter (``TRITON_INTERPRET=1``),
which is how it is tested on machines without a GPU. ``triton`` is
imported only when this backend is used, so the operator still needs
torch alone.
"""
import os
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ...features import (custom_op, traced_names, triton_missing,
                         triton_register_cap)
from ..sampling import corners, finite_positions, sampling_positions
from .base import Backend, refuse_double_backward
from .layout import channels_last_like, pixel_rows


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


# ptxas's register cap of the backward kernels (launch_config says why)
BACKWARD_MAX_REGISTERS = 168


def launch_config(kernel: str,
                  cq: int,
                  c: int,
                  k: int,
                  interpreted: bool = False) -> dict:
    """Block sizes, warps and stages of ``kernel`` ('forward' or
    'backward') for Cq, C and K points.

    A forward program holds [BLOCK_Q, K_PAD] tiles of logits and probabilities
    (the backward keeps its per-point values in [N, K] buffers) and [BLOCK_Q,
    32]-channel chunks of rows; with 8 queries on 4 warps both kernels fit the
    register file for any channel count, with no local memory:
    ``tools/analysis_tools/triton_resources.py`` reports registers and spills
    for sm_80/sm_90a, and its test asserts this for every shape of the paper.
    (16 queries, or 64-channel chunks, measured up to 255 registers and
    hundreds of bytes of spills in the backward.) One stage: software
    pipelining would hold more chunks in flight than registers allow.
    Both kernels carry a register cap, because without one ptxas picks a
    count by its own occupancy heuristic and can spill below it. The
    forward is capped at 128 (several programs share an SM; uncapped,
    ptxas chose 72 registers and spilled 8 bytes at C=40, K=121 on sm_80).
    The backward is capped at 168: uncapped, triton 3.7.1's ptxas chose 80
    registers and spilled 4 bytes at Cq=16, C=24, K=9 on sm_80; at 128 the
    121-point window spills; at 168 it uses 100-163 registers and spills
    nothing at any shape, under triton 3.6.0 and 3.7.1. triton 2.1 has no
    cap to set (:func:`~mmseg_ssanet.features.triton_register_cap`).
    ``interpreted`` (CPU tensors under TRITON_INTERPRET=1, no registers):
    64 queries a program, the same arithmetic in 8x fewer programs, each
    of which the interpreter runs op by op in numpy.
    """
    import triton

    def chunk(n):  # >= 1: tl.arange needs a non-empty range (0 is masked)
        return min(32, triton.next_power_of_2(max(n, 1)))

    if kernel == 'segment_sum':  # the deterministic backward's sums: C rows
        return dict(BLOCK_E=16, BLOCK=chunk(c), num_warps=4, num_stages=1)
    config = dict(
        BLOCK_Q=64 if interpreted else 8,
        BLOCK_CQ=chunk(cq),
        BLOCK_C=chunk(c),
        num_warps=4,
        num_stages=1,
        **triton_register_cap(128 if kernel ==
                              'forward' else BACKWARD_MAX_REGISTERS))
    if kernel == 'forward':  # its logit tile's width
        config['K_PAD'] = triton.next_power_of_2(max(k, 1))
    return config


def halo_config(cq: int, c: int, kernel_size: Sequence[int],
                dilation: Sequence[int]) -> dict:
    """Launch sizes of the ``halo`` forward (:mod:`.triton_halo`) for Cq, C
    and the window: 8x8 query tiles, 32 halo pixels and up to 32 channels
    a ``tl.dot`` (at least 16, its smallest operand; padding channels are
    masked), a margin of 2 pixels for the offsets, and the halo's size.
    8 warps and no register cap: with 4 warps, 64-channel chunks or a cap
    of 168, ptxas spilled 300-13000 bytes at (256, 512, 81) on sm_80, and
    triton 3.7.1 spilled 4 bytes in fp32 with 64 halo pixels a product; so
    it uses up to 255 registers and spills nothing
    (``tools/analysis_tools/triton_resources.py``)."""
    import triton

    def chunk(n):
        return max(16, min(32, triton.next_power_of_2(max(n, 1))))

    config = dict(
        TILE_H=8,
        TILE_W=8,
        MARGIN=2,
        BLOCK_H=32,
        BLOCK_CQ=chunk(cq),
        BLOCK_C=chunk(c),
        num_warps=8,
        num_stages=1)
    config['HALO_H'], config['HALO_W'] = (
        tile + (size - 1) * d + 2 * config['MARGIN'] + 1
        for tile, size, d in ((config['TILE_H'], kernel_size[0], dilation[0]),
                              (config['TILE_W'], kernel_size[1], dilation[1])))
    n_halo = config['HALO_H'] * config['HALO_W']
    config['HALO_PAD'] = triton.cdiv(n_halo,
                                     config['BLOCK_H']) * config['BLOCK_H']
    return config


# How the forward computes: 'gather' (the default) reads each query's 4 K
# corner rows of keys and values; 'halo' multiplies query tiles by the
# keys and values of the pixels around them on tensor cores (tl.dot) and
# gathers only corners beyond its margin. Both give the same log-sum-exp
# to the backward.
FORWARD_ENV = 'SSANET_TRITON_FORWARD'
FORWARD_VARIANTS = ('gather', 'halo')
DEFAULT_FORWARD = 'gather'


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
# 'sorted' (the default), the (query, point, corner) entries sorted by
# pixel and summed pixel by pixel (key_value_grads_in_order): no float
# atomics, bitwise reproducible; or 'atomic', one float32 atomic add per
# (query, point, corner, channel). The default is the cost model's choice
# (tools/analysis_tools/triton_traffic.py: no atomic updates where 'atomic'
# makes 2.0e9 at 64x128 with R101's channels, and fewer bytes requested),
# not yet a GPU's timing. Under torch.use_deterministic_algorithms(True) it
# is always 'sorted'.
BACKWARD_ENV = 'SSANET_TRITON_BACKWARD'
BACKWARD_VARIANTS = ('sorted', 'atomic', 'halo')
DEFAULT_BACKWARD = 'sorted'


def backward_variant() -> str:
    """The backward :data:`BACKWARD_ENV` selects (``DEFAULT_BACKWARD``
    when unset)."""
    if torch.are_deterministic_algorithms_enabled():
        return 'sorted'
    return _variant(BACKWARD_ENV, BACKWARD_VARIANTS, DEFAULT_BACKWARD,
                    'backward')


# On CPU tensors the interpreter's table applies, unless this variable says
# 'gpu': then the GPU's (8 queries a program, other masks on partial
# blocks), so that its arithmetic is tested under the interpreter too.
LAUNCH_TABLE_ENV = 'SSANET_TRITON_LAUNCH_TABLE'


def interpreted_table(device: torch.device) -> bool:
    """Whether a launch on ``device`` takes the interpreter's table."""
    return (device.type == 'cpu'
            and os.environ.get(LAUNCH_TABLE_ENV, 'interpreter') != 'gpu')


def _accumulator(dtype: torch.dtype):
    import triton.language as tl
    return tl.float64 if dtype == torch.float64 else tl.float32


def _lse_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


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
    lse = torch.empty(total, device=v.device, dtype=_lse_dtype(v.dtype))
    if forward_variant() == 'halo':
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
        ACC=_accumulator(v.dtype),
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
    config = halo_config(q.shape[1], v.shape[1], kernel_size, dilation)
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
        ACC=_accumulator(v.dtype),
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
            value.new_empty(B * H * W, dtype=_lse_dtype(value.dtype)))


@custom_op(
    OP_NAME + '_backward', mutates_args=(), device_types=('cuda', 'cpu'))
def snl_triton_backward(grad_out: Tensor, query: Tensor, key: Tensor,
                        value: Tensor, offset: Tensor, lse: Tensor,
                        kernel_size: List[int], dilation: List[int],
                        scale: float, variant: str) -> List[Tensor]:
    """Gradients of query, key, value and offset (channels_last), the key
    and value gradients by the backward ``variant`` (BACKWARD_VARIANTS)."""
    import triton

    from .triton_kernels import snl_backward_kernel
    B, C, H, W = value.shape
    q, k, v, off, go = (
        pixel_rows(x) for x in (query, key, value, offset, grad_out))
    total, cq = q.shape
    acc_dtype = lse.dtype
    grad_q = torch.empty(total, cq, device=q.device, dtype=acc_dtype)
    # the atomics' targets; the other variants return their own sums
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
        ACC=_accumulator(v.dtype),
        **config)
    if variant == 'sorted':
        grad_k, grad_v = key_value_grads_in_order(q, go, off, prob, grad_logit,
                                                  (B, H, W), kernel_size,
                                                  dilation)
    elif variant == 'halo':
        grad_k, grad_v = key_value_grads_by_tiles(q, go, off, prob, grad_logit,
                                                  (B, H, W), kernel_size,
                                                  dilation)
    return [
        rows.to(x.dtype).view(B, H, W, x.shape[1]).permute(0, 3, 1, 2)
        for rows, x in ((grad_q, query), (grad_k, key), (grad_v, value),
                        (grad_off, offset))
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


def _corner_entries(off: Tensor, shape: Tuple[int, int, int],
                    kernel_size: Tuple[int, int], dilation: Tuple[int, int],
                    dtype: torch.dtype):
    """Every (query, point, corner) whose corner is inside the map: the
    corner's pixel row, the query row, the point index and the bilinear
    weight, flat (eqs. 4-5, :mod:`..sampling`, as the kernels compute
    them; off-map corners, and all corners of a non-finite position, have
    no entry)."""
    B, H, W = shape
    total, two_k = off.shape
    offset = off.to(dtype).view(B, H, W, two_k).permute(0, 3, 1, 2)
    t_y, t_x = sampling_positions(offset, kernel_size, dilation)
    t_y, t_x, _ = finite_positions(t_y, t_x)
    # [B, K, H, W] -> rows of channels-last pixels, [total, K]
    t_y, t_x = (
        t.permute(0, 2, 3, 1).reshape(total, two_k // 2) for t in (t_y, t_x))
    ys, xs, weight, inside = corners(t_y, t_x, H, W)  # [total, K, 4]
    rows = torch.arange(total, device=off.device)
    image_start = (rows - rows % (H * W))[:, None, None]
    pixel = (image_start + (ys * W + xs).long())[inside]
    query = rows[:, None, None].expand_as(inside)[inside]
    point = torch.arange(two_k // 2, device=off.device)[None, :, None]
    return pixel, query, point.expand_as(inside)[inside], weight[inside]


def key_value_grads_in_order(q: Tensor, go: Tensor, off: Tensor, prob: Tensor,
                             grad_logit: Tensor, shape: Tuple[int, int, int],
                             kernel_size: Tuple[int,
                                                int], dilation: Tuple[int,
                                                                      int]):
    """Key and value gradients without atomics, bitwise reproducible.

    Owner computes: the (query, point, corner) entries are sorted stably
    by pixel, and one program per pixel adds its entries' rows (query rows
    times g_k w_kc for keys, grad_out rows times p_k w_kc for values) in
    that order. Costs, beyond the buffers both variants use: 4 K entries
    per query (int64 pixel, query and point
    indices and a weight each) and a sort.
    """
    import triton

    from .triton_kernels import snl_segment_sum_kernel
    total = q.shape[0]
    pixel, query, point, weight = _corner_entries(off, shape, kernel_size,
                                                  dilation, prob.dtype)
    pixel, order = torch.sort(pixel, stable=True)
    query, point, weight = query[order], point[order], weight[order]
    starts = torch.searchsorted(pixel,
                                torch.arange(total + 1, device=pixel.device))
    acc = _accumulator(prob.dtype)
    grads = []
    for src, coef in ((q, grad_logit), (go, prob)):
        n = src.shape[1]
        out = torch.zeros(total, n, device=src.device, dtype=prob.dtype)
        config = launch_config('segment_sum', 0, n, 0)
        if n:  # Cq = 0: nothing to add
            snl_segment_sum_kernel[(total, triton.cdiv(n, config['BLOCK']))](
                src,
                query,
                coef[query, point] * weight,
                starts,
                out,
                N=n,
                ACC=acc,
                **config)
        grads.append(out)
    return grads


def key_value_launch() -> dict:
    """Block sizes, warps and register cap of the ``halo`` backward's tile
    kernel: 32 halo pixels and 16 channels a product. With 32 channels,
    ptxas spilled 920 bytes in fp32 at (256, 512, 81) on sm_80 (triton
    3.6.0); uncapped with 8 warps, it chose 128 registers and spilled
    (3.7.1 fp32, 2.1.0 bf16). So: 8 warps capped at 208 where triton has
    the cap, 4 warps where it has not (2.1), both spill-free
    (``tools/analysis_tools/triton_resources.py``)."""
    cap = triton_register_cap(208)
    return dict(
        BLOCK_H=32,
        BLOCK_CQ=16,
        BLOCK_C=16,
        num_warps=8 if cap else 4,
        num_stages=1,
        **cap)


def halo_sum_launch(n: int) -> dict:
    """Channels, warps and stages of ``snl_halo_sum_kernel`` for rows of
    ``n`` channels (the segment sums' chunks)."""
    config = launch_config('segment_sum', 0, n, 0)
    return dict(BLOCK=config['BLOCK'], num_warps=4, num_stages=1)


def key_value_grads_by_tiles(q: Tensor, go: Tensor, off: Tensor, prob: Tensor,
                             grad_logit: Tensor, shape: Tuple[int, int, int],
                             kernel_size: Sequence[int],
                             dilation: Sequence[int]):
    """Key and value gradients with the halo forward's tiles
    (:func:`~.triton_halo.snl_halo_key_value_kernel`): each 8x8 tile
    writes its halo's part once, from [64, halo] coefficient tiles times
    its query and grad_out rows on tensor cores, and one program per pixel
    adds the parts of the tiles whose halos hold it in a fixed order.
    Corners beyond a halo (and chunks with non-finite rows) go to float32
    atomics, so the result is bitwise reproducible only where there are
    none. Costs the parts, [tiles x halo, Cq + C] float32 (about 7x the
    gradients at 9x9 points), and two [64, halo] scratch tiles a tile."""
    import triton

    from .triton_halo import snl_halo_key_value_kernel, snl_halo_sum_kernel
    B, H, W = shape
    total, cq = q.shape
    c = go.shape[1]
    config = halo_config(cq, c, kernel_size, dilation)
    launch = key_value_launch()
    tiles = B * -(-H // config['TILE_H']) * -(-W // config['TILE_W'])
    acc_dtype = prob.dtype

    def zeros(*size):
        return torch.zeros(*size, device=q.device, dtype=acc_dtype)

    attn, gate = (
        zeros(tiles * config['TILE_H'] * config['TILE_W'] * config['HALO_PAD'])
        for _ in range(2))
    parts = [zeros(tiles * config['HALO_PAD'], n) for n in (cq, c)]
    far = [zeros(total, n) for n in (cq, c)]
    geometry = dict(
        KH=kernel_size[0],
        KW=kernel_size[1],
        DH=dilation[0],
        DW=dilation[1],
        TILE_H=config['TILE_H'],
        TILE_W=config['TILE_W'],
        MARGIN=config['MARGIN'],
        HALO_H=config['HALO_H'],
        HALO_W=config['HALO_W'],
        HALO_PAD=config['HALO_PAD'])
    snl_halo_key_value_kernel[(tiles, )](
        q,
        go,
        off,
        prob,
        grad_logit,
        *parts,
        *far,
        attn,
        gate,
        H,
        W,
        CQ=cq,
        C=c,
        ACC=_accumulator(prob.dtype),
        WIDEN=q.device.type == 'cpu',
        **geometry,
        **launch)
    grads = []
    for part, rest, n in zip(parts, far, (cq, c)):
        out = torch.empty(total, n, device=q.device, dtype=acc_dtype)
        sums = halo_sum_launch(n)
        if n:  # Cq = 0: nothing to add
            snl_halo_sum_kernel[(total, triton.cdiv(n, sums['BLOCK']))](
                part, rest, out, H, W, N=n, **sums, **geometry)
        grads.append(out)
    return grads


def attention(query: Tensor, key: Tensor, value: Tensor, offset: Tensor,
              kernel_size: Tuple[int, int], dilation: Tuple[int, int],
              scale: Optional[float]) -> Tensor:
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
