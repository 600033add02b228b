"""The Triton backward variants that do not add one float atomic per
(query, point, corner, channel): ``sorted`` (:func:`key_value_grads_in_order`,
owner computes, bitwise reproducible; the key and value gradients from the
gather backward kernel's ``p_k`` and logit gradients, [N, K]) and ``halo``
(:func:`halo_backward`, every gradient from tiles on tensor cores; atomics
only for corners beyond a halo and non-finite rows, and none where
``deterministic``)."""
from typing import Sequence, Tuple

import torch
from torch import Tensor

from ..sampling import corners, finite_positions, sampling_positions
from .triton_launch import (accumulator, halo_backward_launch, halo_config,
                            halo_key_value_launch, interpreted_table,
                            launch_config)


def corner_entries(off: Tensor, shape: Tuple[int, int, int],
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
    pixel, query, point, weight = corner_entries(off, shape, kernel_size,
                                                 dilation, prob.dtype)
    pixel, order = torch.sort(pixel, stable=True)
    query, point, weight = query[order], point[order], weight[order]
    starts = torch.searchsorted(pixel,
                                torch.arange(total + 1, device=pixel.device))
    acc = accumulator(prob.dtype)
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


def halo_backward(q: Tensor,
                  k: Tensor,
                  v: Tensor,
                  off: Tensor,
                  go: Tensor,
                  lse: Tensor,
                  shape: Tuple[int, int, int],
                  kernel_size: Sequence[int],
                  dilation: Sequence[int],
                  scale: float,
                  deterministic: bool = False):
    """All four gradients (rows) by the ``halo`` backward: each 8x8 tile
    computes its queries' p_k, logit and offset gradients from [64, halo]
    score tiles, Q K_halo^T and grad_out V_halo^T
    (:func:`~.triton_halo.snl_halo_points_kernel`); then its [64, halo]
    coefficient tiles G and A, summed point by point in a fixed order, and
    its query gradient G K_halo on tensor cores
    (:func:`~.triton_halo.snl_halo_gradients_kernel`); then each 8x8 tile
    of pixels its key and value gradients, G^T Q and A^T grad_out over the
    query tiles whose halos hold it, in a fixed order, written once
    (:func:`~.triton_halo.snl_halo_key_value_kernel`). The corners
    beyond a halo, and those of query or grad_out entries that are inf or
    NaN, go to float32 atomics; ``deterministic``: where there are any,
    the key and value gradients are the ``sorted`` sums
    (:func:`key_value_grads_in_order`) instead, so the result is bitwise
    reproducible either way. Costs two [64, halo] float32 tiles a tile in
    each kernel, float32 buffers of the far corners' sums and a copy of
    the query and grad_out rows."""
    import triton

    from .triton_halo import (snl_halo_gradients_kernel,
                              snl_halo_key_value_kernel,
                              snl_halo_points_kernel)
    B, H, W = shape
    total, cq = q.shape
    c = go.shape[1]
    interpreted = interpreted_table(q.device)
    config = halo_config(cq, c, kernel_size, dilation, interpreted)
    tiles = B * -(-H // config['TILE_H']) * -(-W // config['TILE_W'])
    acc_dtype = lse.dtype

    def buffer(*size, fill=torch.zeros):
        return fill(*size, device=q.device, dtype=acc_dtype)

    tile_size = (
        tiles * config['TILE_H'] * config['TILE_W'] * config['HALO_PAD'])
    n_points = kernel_size[0] * kernel_size[1]
    grad_off = buffer(total, off.shape[1], fill=torch.empty)
    # p_k, the logit gradients and the offset gradient's <q, key_c> terms
    prob, grad_logit, qk_d = (
        buffer(total, n, fill=torch.empty)
        for n in (n_points, n_points, 2 * n_points))
    geometry = dict(
        CQ=cq,
        C=c,
        KH=kernel_size[0],
        KW=kernel_size[1],
        DH=dilation[0],
        DW=dilation[1],
        TILE_H=config['TILE_H'],
        TILE_W=config['TILE_W'],
        MARGIN=config['MARGIN'],
        HALO_H=config['HALO_H'],
        HALO_W=config['HALO_W'],
        HALO_PAD=config['HALO_PAD'],
        ACC=accumulator(v.dtype),
        WIDEN=q.device.type == 'cpu')
    scores = [buffer(tile_size, fill=torch.empty) for _ in range(2)]
    snl_halo_points_kernel[(tiles, )](q, k, v, off, go, lse, grad_off, prob,
                                      grad_logit, qk_d, *scores, H, W, scale,
                                      **geometry, **halo_backward_launch(
                                          'points', interpreted))
    del scores  # freed before the gradients kernel's buffers: a lower peak
    grad_q = buffer(total, cq, fill=torch.empty)
    far = [buffer(total, n) for n in (cq, c)]
    clean = [x.new_empty(x.shape) for x in (q, go)]  # row-major scratch
    gate, attn = buffer(tile_size), buffer(tile_size)
    slow = torch.empty(tiles, device=q.device, dtype=torch.int32)
    snl_halo_gradients_kernel[(tiles, )](
        q, k, v, go, off, prob, grad_logit, grad_q, *far, *clean, attn, gate,
        slow, H, W, **geometry, **halo_backward_launch('gradients',
                                                       interpreted))
    if deterministic and bool(slow.any()):
        grad_k, grad_v = key_value_grads_in_order(q, go, off, prob, grad_logit,
                                                  shape, kernel_size, dilation)
        return grad_q, grad_k, grad_v, grad_off
    geometry = {  # the owner kernel's (float32 tiles, channels per launch)
        name: geometry[name]
        for name in ('KH', 'KW', 'DH', 'DW', 'TILE_H', 'TILE_W', 'MARGIN',
                     'HALO_H', 'HALO_W', 'HALO_PAD', 'ACC', 'WIDEN')
    }
    grads = []
    for tile, x, rest in ((gate, clean[0], far[0]), (attn, clean[1], far[1])):
        n = x.shape[1]
        out = buffer(total, n, fill=torch.empty)
        launch = halo_key_value_launch(n, x.dtype, interpreted)
        if n:  # Cq = 0: nothing to add
            snl_halo_key_value_kernel[(tiles, triton.cdiv(n,
                                                          launch['BLOCK']))](
                                                              tile,
                                                              x,
                                                              rest,
                                                              out,
                                                              H,
                                                              W,
                                                              N=n,
                                                              **launch,
                                                              **geometry)
        grads.append(out)
    return grad_q, grads[0], grads[1], grad_off
