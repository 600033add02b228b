"""The ``halo`` forward and backward of the SNL operator: tiles on tensor
cores.

One program takes a TILE_H x TILE_W tile of query pixels of one image and
the halo around it: every pixel a corner of the tile's window can reach
while the offsets stay within MARGIN pixels (rows from the tile's top
minus the window's reach minus MARGIN to its bottom plus reach plus
MARGIN + 1, columns alike). Instead of gathering 4 K key and value rows
per query, the forward

1. multiplies the tile's queries by the halo's keys, S = Q K_halo^T
   (``tl.dot``: tensor cores in half precision), into a scratch tile;
2. per point k, reads the logit of each query as the corners' bilinear
   combination of S's entries (eqs. 4-6); a corner outside the halo (an
   offset beyond the margin) is dotted with its key row directly, so any
   offset stays exact. Logits go to the PROB buffer, then the exact
   softmax turns them into p_k there;
3. adds p_k w_kc to the scratch attention tile A[query, halo pixel],
   point by point in a fixed order (a load and a store with a barrier
   after each point: one query's 4 corners of one point are 4 pixels, but
   corners of different points can share one), so the forward is bitwise
   reproducible;
4. per chunk of output channels, out = A V_halo (``tl.dot``; in half
   precision A is split into a high and a low half-precision part, so the
   weights keep about 16 bits), plus the corners outside the halo
   gathered directly. A halo chunk of values holding inf or NaN is left
   out of the product (0 * inf would poison every query of the tile) and
   the chunk's output is gathered corner by corner instead, as the
   reference computes it.

The result, log-sum-exp included, is the ``gather`` forward's up to the
order of float32 sums. The backward works the same way in three kernels:
:func:`snl_halo_points_kernel` takes <q, key_c> and <grad_out, value_c>
from S and T = grad_out V_halo^T for the gather backward's per-point
terms (p_k, Delta, the logit and offset gradients);
:func:`snl_halo_gradients_kernel` builds G = sum g_k w_kc and A on
[query, halo pixel] tiles, in order, and the query gradient G K_halo;
:func:`snl_halo_key_value_kernel` gives each tile of pixels its key and
value gradients, G^T Q and A^T grad_out over the query tiles whose halos
hold it (owner computes: each gradient row written once, no atomics).
"""
import functools
from typing import Optional

import triton
import triton.language as tl

from ...features import triton_compile_ptx, triton_dot_takes_input_precision
from .triton_kernels import (_corner, _load_rows, _logit_gradients,
                             _point_terms, _points)


@triton.jit
def _tile(H, W, TILE_H: tl.constexpr, TILE_W: tl.constexpr):
    """This program's image, query rows, which are real, the image's first
    row, and the tile's query coordinates and top-left pixel."""
    tiles_x = tl.cdiv(W, TILE_W)
    per_image = tl.cdiv(H, TILE_H) * tiles_x
    pid = tl.program_id(0)
    b = pid // per_image
    ty0 = (pid % per_image) // tiles_x * TILE_H
    tx0 = (pid % per_image) % tiles_x * TILE_W
    i = tl.arange(0, TILE_H * TILE_W)
    y = ty0 + i // TILE_W
    x = tx0 + i % TILE_W
    row0 = b * H * W
    return row0 + y * W + x, (y < H) & (x < W), row0, y, x, ty0, tx0


@triton.jit
def _halo_pixels(h, hy0, hx0, H, W, row0, HALO_W: tl.constexpr,
                 N_HALO: tl.constexpr):
    """Row index of halo pixels ``h`` (flat, row-major) and whether they
    are pixels of the map."""
    hy = hy0 + h // HALO_W
    hx = hx0 + h % HALO_W
    ok = (h < N_HALO) & (hy >= 0) & (hy < H) & (hx >= 0) & (hx < W)
    return row0 + tl.where(ok, hy * W + hx, 0), ok


@triton.jit
def _in_halo(row, row0, hy0, hx0, W, HALO_H: tl.constexpr,
             HALO_W: tl.constexpr):
    """Flat halo index of the map pixel at ``row`` and whether the halo
    holds it."""
    py = (row - row0) // W - hy0
    px = (row - row0) % W - hx0
    held = (py >= 0) & (py < HALO_H) & (px >= 0) & (px < HALO_W)
    return tl.where(held, py * HALO_W + px, 0), held


@triton.jit
def _row_dot(X, rows, Y, yrows, mask, N: tl.constexpr, BLOCK: tl.constexpr,
             ACC: tl.constexpr):
    """<X[rows], Y[yrows]> where ``mask``, over N channels by chunks."""
    dot = tl.zeros(rows.shape, ACC)
    for c0 in range(0, N, BLOCK):
        ch = c0 + tl.arange(0, BLOCK)
        a = _load_rows(X, rows, mask, ch, N)
        b = _load_rows(Y, yrows, mask, ch, N)
        dot += tl.sum(a.to(ACC) * b.to(ACC), axis=1)
    return dot


# float32 products not rounded to tf32, on every triton
if triton_dot_takes_input_precision():

    @triton.jit
    def _exact_dot(a, b, ACC: tl.constexpr):
        return tl.dot(a, b, input_precision='ieee', out_dtype=ACC)
else:

    @triton.jit
    def _exact_dot(a, b, ACC: tl.constexpr):
        return tl.dot(a, b, allow_tf32=False, out_dtype=ACC)


@triton.jit
def _dot(a, b, ACC: tl.constexpr, WIDEN: tl.constexpr):
    """a @ b accumulated in ACC; float32 products not rounded to tf32.
    WIDEN (under the interpreter, whose dot multiplies bfloat16's raw
    bits): the operands widened to ACC first, which is exact, so the
    products are those of the tensor cores."""
    if WIDEN:
        return _exact_dot(a.to(ACC), b.to(ACC), ACC)
    return _exact_dot(a, b, ACC)


@triton.jit
def _float64_product_kernel(A, B, OUT):
    i = tl.arange(0, 16)
    at = i[:, None] * 16 + i[None, :]
    product = _dot(tl.load(A + at), tl.load(B + at), tl.float64, False)
    tl.store(OUT + at, product)


@functools.lru_cache(maxsize=None)
def float64_products_refused(device_type: str = 'cuda') -> Optional[str]:
    """None if this triton compiles the halo kernels' ``tl.dot`` of
    float64 tiles for ``device_type``, else its error: triton 2.1.0 builds
    a float32 accumulator for them and fails. For 'cuda', asked by
    compiling a 16x16 product ahead of time for sm_80 (no GPU needed;
    about a second, once); the interpreter ('cpu') multiplies float64
    itself."""
    if device_type == 'cpu':
        return None
    signature = {name: '*fp64' for name in ('A', 'B', 'OUT')}
    try:
        triton_compile_ptx(
            _float64_product_kernel,
            signature, {},
            80,
            num_warps=4,
            num_stages=1)
    except Exception as error:  # any compiler stage's own error type
        return f'{type(error).__name__}: {str(error).strip()[:300]}'
    return None


@triton.jit
def _weights_dot(weights, rows, ACC: tl.constexpr, WIDEN: tl.constexpr):
    """weights (ACC) @ rows (the input dtype): in half precision the
    weights as a high and a low half-precision part, both on tensor
    cores, so they keep about 16 bits."""
    if rows.dtype == ACC:
        return _dot(weights, rows, ACC, WIDEN)
    high = weights.to(rows.dtype)
    low = (weights - high.to(ACC)).to(rows.dtype)
    return _dot(high, rows, ACC, WIDEN) + _dot(low, rows, ACC, WIDEN)


@triton.jit
def _add_in_order(TILE, at, value, keep):
    """TILE[at] += value where ``keep``, as a load and a store: the 4
    corners of one query's point are 4 pixels, so no two lanes of one call
    share an address, and a barrier after each point orders the calls.
    The sums run point by point in a fixed order, bitwise reproducible
    (float atomics would add in whatever order the lanes arrive)."""
    tl.store(
        TILE + at, tl.load(TILE + at, mask=keep, other=0.0) + value, mask=keep)


@triton.jit
def _halo_scores(X, Y, SCORE, rows, valid, scratch, row0, hy0, hx0, H, W,
                 N: tl.constexpr, HALO_W: tl.constexpr, N_HALO: tl.constexpr,
                 HALO_PAD: tl.constexpr, BLOCK_H: tl.constexpr,
                 BLOCK: tl.constexpr, ACC: tl.constexpr, WIDEN: tl.constexpr):
    """SCORE[query, halo pixel] = <X[query], Y[halo pixel]> for the tile's
    queries (``tl.dot``, BLOCK_H halo pixels at a time; 0 off the map)."""
    for h0 in range(0, HALO_PAD, BLOCK_H):
        h = h0 + tl.arange(0, BLOCK_H)
        hrow, hok = _halo_pixels(h, hy0, hx0, H, W, row0, HALO_W, N_HALO)
        s = tl.zeros([rows.shape[0], BLOCK_H], ACC)
        for c0 in range(0, N, BLOCK):
            ch = c0 + tl.arange(0, BLOCK)
            a = _load_rows(X, rows, valid, ch, N)
            b = tl.load(
                Y + hrow[None, :] * N + ch[:, None],
                mask=hok[None, :] & (ch[:, None] < N),
                other=0.0)
            s += _dot(a, b, ACC, WIDEN)
        tl.store(SCORE + scratch[:, None] + h[None, :], s, mask=valid[:, None])


@triton.jit
def _poison(X, rows, valid, N: tl.constexpr, BLOCK: tl.constexpr,
            ACC: tl.constexpr):
    """NaN for a row of X with a non-finite channel, 0 otherwise: its dots
    with rows sampled outside the map (zeros) are NaN too (inf * 0), which
    the score tile, 0 there, does not give."""
    poison = tl.zeros(rows.shape, ACC)
    for c0 in range(0, N, BLOCK):
        ch = c0 + tl.arange(0, BLOCK)
        a = _load_rows(X, rows, valid, ch, N)
        poison += tl.sum(a.to(ACC) * 0.0, axis=1)
    return poison


@triton.jit
def _halo_point_dots(SCORE, X, Y, rows, scratch, ty, tx, H, W, row0, hy0, hx0,
                     N: tl.constexpr, HALO_H: tl.constexpr,
                     HALO_W: tl.constexpr, BLOCK: tl.constexpr,
                     ACC: tl.constexpr, valid):
    """``_point_dots`` from a score tile: for the points (ty, tx), the sums
    over corners c of w_c, d w_c / d ty and d w_c / d tx times <X[rows],
    Y[row_c]>, read from SCORE where the halo holds the corner and dotted
    row by row where it does not; and 1 if any corner lies beyond the
    halo, else 0. (The backward calls it once per score tile: one call
    for both tiles spilled on triton 2.1.)"""
    dot = tl.zeros(rows.shape, ACC)
    dot_dy = tl.zeros(rows.shape, ACC)
    dot_dx = tl.zeros(rows.shape, ACC)
    outside = tl.program_id(0) * 0
    for c in tl.static_range(4):
        row, inside, w, dw_dy, dw_dx = _corner(ty, tx, H, W, row0, c, valid)
        hidx, held = _in_halo(row, row0, hy0, hx0, W, HALO_H, HALO_W)
        d = tl.load(SCORE + scratch + hidx, mask=inside & held, other=0.0)
        far = inside & (held == 0)
        if tl.sum(far.to(tl.int32), axis=0) > 0:
            d += _row_dot(X, rows, Y, row, far, N, BLOCK, ACC)
            outside = 1
        dot += w * d
        dot_dy += dw_dy * d
        dot_dx += dw_dx * d
    return dot, dot_dy, dot_dx, outside


@triton.jit
def snl_halo_forward_kernel(
        Q, KEY, V, OFF, OUT, LSE, PROB, SCORE, ATTN, H, W, scale,
        CQ: tl.constexpr, C: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
        DH: tl.constexpr, DW: tl.constexpr, TILE_H: tl.constexpr,
        TILE_W: tl.constexpr, MARGIN: tl.constexpr, HALO_H: tl.constexpr,
        HALO_W: tl.constexpr, HALO_PAD: tl.constexpr, BLOCK_H: tl.constexpr,
        BLOCK_CQ: tl.constexpr, BLOCK_C: tl.constexpr, ACC: tl.constexpr,
        WIDEN: tl.constexpr):
    # HALO_H = TILE_H + (KH - 1) DH + 2 MARGIN + 1 (HALO_W alike), HALO_PAD
    # = HALO_H HALO_W rounded up to a multiple of every kernel's BLOCK_H:
    # halo_config's arithmetic
    rows, valid, row0, y, x, ty0, tx0 = _tile(H, W, TILE_H, TILE_W)
    N_HALO = HALO_H * HALO_W
    hy0 = ty0 - (KH - 1) // 2 * DH - MARGIN
    hx0 = tx0 - (KW - 1) // 2 * DW - MARGIN
    # this program's [TILE_H TILE_W, HALO_PAD] scratch tiles, a row a query
    scratch = (tl.program_id(0).to(tl.int64) *
               (TILE_H * TILE_W) + tl.arange(0, TILE_H * TILE_W)) * HALO_PAD
    # 1. S = Q K_halo^T
    _halo_scores(Q, KEY, SCORE, rows, valid, scratch, row0, hy0, hx0, H, W, CQ,
                 HALO_W, N_HALO, HALO_PAD, BLOCK_H, BLOCK_CQ, ACC, WIDEN)
    poison = _poison(Q, rows, valid, CQ, BLOCK_CQ, ACC)
    tl.debug_barrier()
    # 2. logits from S's entries (corners outside the halo: their own
    # dot), into PROB; then the exact softmax over the K points there
    m = tl.full(rows.shape, float('-inf'), ACC)
    all_finite = valid
    outside = tl.program_id(0) * 0  # any corner outside the halo
    for kk in range(KH * KW):
        ty, tx, finite = _points(OFF, rows, kk, y, x, valid, H, W, KH, KW, DH,
                                 DW, 2 * KH * KW, ACC)
        all_finite = all_finite & finite
        logit, _, _, far = _halo_point_dots(SCORE, Q, KEY, rows, scratch, ty,
                                            tx, H, W, row0, hy0, hx0, CQ,
                                            HALO_H, HALO_W, BLOCK_CQ, ACC,
                                            valid)
        outside += far
        logit = (logit + poison) * scale
        m = tl.maximum(m, logit)
        tl.store(PROB + rows * (KH * KW) + kk, logit, mask=valid)
    # PROB's stores, visible to whichever thread holds a query below
    tl.debug_barrier()
    total = tl.zeros(rows.shape, ACC)
    for kk in range(KH * KW):
        logit = tl.load(PROB + rows * (KH * KW) + kk, mask=valid, other=0.0)
        total += tl.exp(logit - m)
    lse = m + tl.log(total)
    tl.store(LSE + rows, tl.where(all_finite, lse, float('nan')), mask=valid)
    keep = all_finite & (tl.abs(lse) < float('inf'))
    # 3. A[query, halo pixel] += p_k w_kc; p_k stays in PROB for step 4
    for kk in range(KH * KW):
        ty, tx, _ = _points(OFF, rows, kk, y, x, valid, H, W, KH, KW, DH, DW,
                            2 * KH * KW, ACC)
        p = tl.exp(
            tl.load(PROB + rows * (KH * KW) + kk, mask=valid, other=0.0) - lse)
        # every thread holding a copy of the logit has read it
        tl.debug_barrier()
        tl.store(PROB + rows * (KH * KW) + kk, p, mask=valid)
        for c in tl.static_range(4):
            row, inside, w, _, _ = _corner(ty, tx, H, W, row0, c, valid)
            hidx, held = _in_halo(row, row0, hy0, hx0, W, HALO_H, HALO_W)
            _add_in_order(ATTN, scratch + hidx, p * w, inside & held)
        # this point's sums, visible to every thread before the next's
        tl.debug_barrier()
    # 4. out = A V_halo by chunks of channels, plus the far corners; NaN
    # where a p_k is (the log-sum-exp is then not finite): the reference
    # multiplies it by the value sampled, 0 off the map
    _tile_times_halo(ATTN, PROB, V, OUT, tl.where(keep, 0.0, float('nan')),
                     outside, rows, valid, row0, y, x, hy0, hx0, scratch, OFF,
                     H, W, C, KH, KW, DH, DW, HALO_H, HALO_W, HALO_PAD,
                     BLOCK_H, BLOCK_C, ACC, WIDEN)


@triton.jit
def _tile_times_halo(COEF_TILE, COEF, Y, OUT, row_poison, outside, rows, valid,
                     row0, y, x, hy0, hx0, scratch, OFF, H, W, N: tl.constexpr,
                     KH: tl.constexpr, KW: tl.constexpr, DH: tl.constexpr,
                     DW: tl.constexpr, HALO_H: tl.constexpr,
                     HALO_W: tl.constexpr, HALO_PAD: tl.constexpr,
                     BLOCK_H: tl.constexpr, BLOCK: tl.constexpr,
                     ACC: tl.constexpr, WIDEN: tl.constexpr):
    """OUT[query] = sum over halo pixels of COEF_TILE[query, halo pixel]
    Y[halo pixel] (``tl.dot``) plus the corners beyond the halo gathered
    (coefficient COEF[query, point] times the corner's weight), plus
    ``row_poison``, by chunks of N channels: the forward's output (A, p_k,
    values) and the backward's query gradient (G, g_k, keys). A chunk
    whose halo Y rows hold inf or NaN is left out of the product (0 * inf
    would poison every query of the tile) and gathered corner by corner
    instead, as the reference computes it."""
    N_HALO = HALO_H * HALO_W
    for c0 in range(0, N, BLOCK):
        ch = c0 + tl.arange(0, BLOCK)
        ch_ok = ch[None, :] < N
        acc = tl.zeros([rows.shape[0], BLOCK], ACC)
        bad = tl.zeros([BLOCK], tl.int32)  # non-finite Y rows by channel
        for h0 in range(0, HALO_PAD, BLOCK_H):
            h = h0 + tl.arange(0, BLOCK_H)
            hrow, hok = _halo_pixels(h, hy0, hx0, H, W, row0, HALO_W, N_HALO)
            halo = _load_rows(Y, hrow, hok, ch, N)
            finite = tl.abs(halo.to(ACC)) < float('inf')
            bad += tl.sum((finite == 0).to(tl.int32), axis=0)
            halo = tl.where(finite, halo, 0.0).to(halo.dtype)
            coef = tl.load(
                COEF_TILE + scratch[:, None] + h[None, :],
                mask=valid[:, None],
                other=0.0)
            acc += _weights_dot(coef, halo, ACC, WIDEN)
        # (a scalar sum after the loop: triton 2.1 cannot compile one of a
        # 2-d tile carried through it)
        poisoned = tl.sum(bad, axis=0)
        gathered = tl.zeros([rows.shape[0], BLOCK], ACC)
        if poisoned + outside > 0:
            for kk in range(KH * KW):
                ty, tx, _ = _points(OFF, rows, kk, y, x, valid, H, W, KH, KW,
                                    DH, DW, 2 * KH * KW, ACC)
                a = tl.load(
                    COEF + rows * (KH * KW) + kk, mask=valid, other=0.0)
                for c in tl.static_range(4):
                    row, inside, w, _, _ = _corner(ty, tx, H, W, row0, c,
                                                   valid)
                    _, held = _in_halo(row, row0, hy0, hx0, W, HALO_H, HALO_W)
                    take = inside & ((held == 0) | (poisoned > 0))
                    val = _load_rows(Y, row, take, ch, N).to(ACC)
                    gathered += (a * w)[:, None] * val
        # a chunk with non-finite Y rows: all of it gathered
        acc = tl.where(poisoned == 0, acc, 0.0) + gathered
        tl.store(
            OUT + rows[:, None] * N + ch[None, :],
            (acc + row_poison[:, None]).to(OUT.dtype.element_ty),
            mask=valid[:, None] & ch_ok)


@triton.jit
def _coefficient_tiles(OFF, PROB, GRAD_LOGIT, ATTN, GATE, rows, valid, row0, y,
                       x, hy0, hx0, scratch, H, W, KH: tl.constexpr,
                       KW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr,
                       HALO_H: tl.constexpr, HALO_W: tl.constexpr,
                       ACC: tl.constexpr):
    """A[query, halo pixel] += p_k w_kc and G[query, halo pixel] += g_k w_kc
    for the corners the halo holds, point by point (:func:`_add_in_order`);
    whether any corner lies beyond it, and
    NaN for a query with a non-finite g_k, else 0 (the query gradient's
    rows are NaN there, as each of its corner terms is)."""
    outside = tl.program_id(0) * 0
    poison = tl.zeros(rows.shape, ACC)
    for kk in range(KH * KW):
        ty, tx, _ = _points(OFF, rows, kk, y, x, valid, H, W, KH, KW, DH, DW,
                            2 * KH * KW, ACC)
        p = tl.load(PROB + rows * (KH * KW) + kk, mask=valid, other=0.0)
        g = tl.load(GRAD_LOGIT + rows * (KH * KW) + kk, mask=valid, other=0.0)
        poison += g * 0.0
        for c in tl.static_range(4):
            row, inside, w, _, _ = _corner(ty, tx, H, W, row0, c, valid)
            hidx, held = _in_halo(row, row0, hy0, hx0, W, HALO_H, HALO_W)
            _add_in_order(ATTN, scratch + hidx, p * w, inside & held)
            _add_in_order(GATE, scratch + hidx, g * w, inside & held)
            outside += tl.sum((inside & (held == 0)).to(tl.int32), axis=0)
        # this point's sums, visible to every thread before the next's
        tl.debug_barrier()
    return outside, poison


@triton.jit
def _far_corners(X, COEF, FAR, CLEAN, outside, rows, valid, row0, y, x, hy0,
                 hx0, OFF, H, W, N: tl.constexpr, KH: tl.constexpr,
                 KW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr,
                 HALO_H: tl.constexpr, HALO_W: tl.constexpr,
                 BLOCK: tl.constexpr, ACC: tl.constexpr):
    """What :func:`snl_halo_key_value_kernel` leaves out of its products:
    the corners beyond the halo, and the corners of each query in the
    channels where its X row holds inf or NaN (the products take those
    entries as 0: 0 * inf would reach every halo pixel), added to FAR one
    float32 atomic each, coefficient COEF[query, point] times the corner's
    weight times the X entry; and CLEAN, the X rows with those entries 0.
    Returns how many X entries are not finite."""
    n_bad = tl.program_id(0) * 0
    for c0 in range(0, N, BLOCK):
        ch = c0 + tl.arange(0, BLOCK)
        ch_ok = ch[None, :] < N
        given = _load_rows(X, rows, valid, ch, N)
        raw = given.to(ACC)
        bad = (tl.abs(raw) < float('inf')) == 0
        tl.store(
            CLEAN + rows[:, None] * N + ch[None, :],
            tl.where(bad, 0.0, given).to(given.dtype),
            mask=valid[:, None] & ch_ok)
        chunk_bad = tl.sum(tl.sum(bad.to(tl.int32), axis=1), axis=0)
        n_bad += chunk_bad
        if chunk_bad + outside > 0:
            for kk in range(KH * KW):
                ty, tx, _ = _points(OFF, rows, kk, y, x, valid, H, W, KH, KW,
                                    DH, DW, 2 * KH * KW, ACC)
                a = tl.load(
                    COEF + rows * (KH * KW) + kk, mask=valid, other=0.0)
                for c in tl.static_range(4):
                    row, inside, w, _, _ = _corner(ty, tx, H, W, row0, c,
                                                   valid)
                    _, held = _in_halo(row, row0, hy0, hx0, W, HALO_H, HALO_W)
                    take = inside[:, None] & ((held == 0)[:, None] | bad)
                    tl.atomic_add(
                        FAR + row[:, None] * N + ch[None, :],
                        (a * w)[:, None] * raw,
                        mask=take & ch_ok)
    return n_bad


@triton.jit
def snl_halo_points_kernel(
        Q, KEY, V, OFF, GRAD_OUT, LSE, GRAD_OFF, PROB, GRAD_LOGIT, QK_D, SCORE,
        VALUE_SCORE, H, W, scale, CQ: tl.constexpr, C: tl.constexpr,
        KH: tl.constexpr, KW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr,
        TILE_H: tl.constexpr, TILE_W: tl.constexpr, MARGIN: tl.constexpr,
        HALO_H: tl.constexpr, HALO_W: tl.constexpr, HALO_PAD: tl.constexpr,
        BLOCK_H: tl.constexpr, BLOCK_CQ: tl.constexpr, BLOCK_C: tl.constexpr,
        ACC: tl.constexpr, WIDEN: tl.constexpr):
    """The ``halo`` backward's per-point pass, a tile at a time: S = Q
    K_halo^T and T = grad_out V_halo^T (``tl.dot``); per point, <q, key_k>,
    <grad_out, v_k> and their d w / d t sums as corner combinations of S's
    and T's entries (far corners: row dots), hence p_k, Delta, the logit
    gradients g_k and the offset gradient, as the gather backward's
    passes 1 and 1b compute them from gathered rows."""
    rows, valid, row0, y, x, ty0, tx0 = _tile(H, W, TILE_H, TILE_W)
    N_HALO = HALO_H * HALO_W
    hy0 = ty0 - (KH - 1) // 2 * DH - MARGIN
    hx0 = tx0 - (KW - 1) // 2 * DW - MARGIN
    scratch = (tl.program_id(0).to(tl.int64) *
               (TILE_H * TILE_W) + tl.arange(0, TILE_H * TILE_W)) * HALO_PAD
    lse = tl.load(LSE + rows, mask=valid, other=0.0).to(ACC)
    _halo_scores(Q, KEY, SCORE, rows, valid, scratch, row0, hy0, hx0, H, W, CQ,
                 HALO_W, N_HALO, HALO_PAD, BLOCK_H, BLOCK_CQ, ACC, WIDEN)
    _halo_scores(GRAD_OUT, V, VALUE_SCORE, rows, valid, scratch, row0, hy0,
                 hx0, H, W, C, HALO_W, N_HALO, HALO_PAD, BLOCK_H, BLOCK_C, ACC,
                 WIDEN)
    q_poison = _poison(Q, rows, valid, CQ, BLOCK_CQ, ACC)
    go_poison = _poison(GRAD_OUT, rows, valid, C, BLOCK_C, ACC)
    # the score tiles, visible to every thread of the program below
    tl.debug_barrier()
    delta = tl.zeros(rows.shape, ACC)
    for kk in range(KH * KW):
        ty, tx, _ = _points(OFF, rows, kk, y, x, valid, H, W, KH, KW, DH, DW,
                            2 * KH * KW, ACC)
        logit, qk_dy, qk_dx, _ = _halo_point_dots(SCORE, Q, KEY, rows, scratch,
                                                  ty, tx, H, W, row0, hy0, hx0,
                                                  CQ, HALO_H, HALO_W, BLOCK_CQ,
                                                  ACC, valid)
        grad_p, gv_dy, gv_dx, _ = _halo_point_dots(VALUE_SCORE, GRAD_OUT, V,
                                                   rows, scratch, ty, tx, H, W,
                                                   row0, hy0, hx0, C, HALO_H,
                                                   HALO_W, BLOCK_C, ACC, valid)
        delta += _point_terms(PROB, GRAD_LOGIT, GRAD_OFF, QK_D, rows, valid,
                              kk, lse, scale, logit + q_poison,
                              qk_dy + q_poison, qk_dx + q_poison,
                              grad_p + go_poison, gv_dy + go_poison,
                              gv_dx + go_poison, KH * KW)
    # the stores above, visible to every thread of the program below
    tl.debug_barrier()
    _logit_gradients(PROB, GRAD_LOGIT, GRAD_OFF, QK_D, rows, valid, delta,
                     scale, KH * KW)


@triton.jit
def snl_halo_gradients_kernel(
        Q, KEY, V, GRAD_OUT, OFF, PROB, GRAD_LOGIT, GRAD_Q, FAR_K, FAR_V,
        CLEAN_Q, CLEAN_GRAD_OUT, ATTN, GATE, SLOW, H, W, CQ: tl.constexpr,
        C: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr, DH: tl.constexpr,
        DW: tl.constexpr, TILE_H: tl.constexpr, TILE_W: tl.constexpr,
        MARGIN: tl.constexpr, HALO_H: tl.constexpr, HALO_W: tl.constexpr,
        HALO_PAD: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_CQ: tl.constexpr,
        BLOCK_C: tl.constexpr, BLOCK_DQ: tl.constexpr, ACC: tl.constexpr,
        WIDEN: tl.constexpr):
    """The ``halo`` backward's coefficient tiles and query gradient, a tile
    at a time, from p_k and g_k (:func:`snl_halo_points_kernel`): G = sum
    g_k w_kc and A = sum p_k w_kc on [query, halo pixel] tiles, kept for
    :func:`snl_halo_key_value_kernel`; the query gradient G K_halo on
    tensor cores; the corners the key and value products leave out, and
    the query and grad_out rows those products take (:func:`_far_corners`),
    and SLOW[tile], how many of the corners there are
    (far corners and channels with non-finite rows; 0: the tile's key and
    value gradients come from the products alone)."""
    rows, valid, row0, y, x, ty0, tx0 = _tile(H, W, TILE_H, TILE_W)
    hy0 = ty0 - (KH - 1) // 2 * DH - MARGIN
    hx0 = tx0 - (KW - 1) // 2 * DW - MARGIN
    tile = tl.program_id(0).to(tl.int64)
    scratch = (tile * (TILE_H * TILE_W) + tl.arange(0, TILE_H * TILE_W)) * \
        HALO_PAD
    outside, g_poison = _coefficient_tiles(OFF, PROB, GRAD_LOGIT, ATTN, GATE,
                                           rows, valid, row0, y, x, hy0, hx0,
                                           scratch, H, W, KH, KW, DH, DW,
                                           HALO_H, HALO_W, ACC)
    slow = outside
    slow += _far_corners(Q, GRAD_LOGIT, FAR_K, CLEAN_Q, outside, rows, valid,
                         row0, y, x, hy0, hx0, OFF, H, W, CQ, KH, KW, DH, DW,
                         HALO_H, HALO_W, BLOCK_CQ, ACC)
    slow += _far_corners(GRAD_OUT, PROB, FAR_V, CLEAN_GRAD_OUT, outside, rows,
                         valid, row0, y, x, hy0, hx0, OFF, H, W, C, KH, KW, DH,
                         DW, HALO_H, HALO_W, BLOCK_C, ACC)
    tl.store(SLOW + tile, slow)
    _tile_times_halo(GATE, GRAD_LOGIT, KEY, GRAD_Q, g_poison, outside, rows,
                     valid, row0, y, x, hy0, hx0, scratch, OFF, H, W, CQ, KH,
                     KW, DH, DW, HALO_H, HALO_W, HALO_PAD, BLOCK_H, BLOCK_DQ,
                     ACC, WIDEN)


@triton.jit
def snl_halo_key_value_kernel(COEF_TILE, X, FAR, OUT, H, W, N: tl.constexpr,
                              KH: tl.constexpr, KW: tl.constexpr,
                              DH: tl.constexpr, DW: tl.constexpr,
                              TILE_H: tl.constexpr, TILE_W: tl.constexpr,
                              MARGIN: tl.constexpr, HALO_H: tl.constexpr,
                              HALO_W: tl.constexpr, HALO_PAD: tl.constexpr,
                              DOT_Q: tl.constexpr, BLOCK: tl.constexpr,
                              ACC: tl.constexpr, WIDEN: tl.constexpr):
    """The key (or value) gradient of a TILE_H x TILE_W tile of pixels,
    owner computes: OUT[pixel] = FAR[pixel] + sum over the query tiles
    whose halo holds the pixel, in a fixed order, of COEF_TILE[query,
    pixel]^T X[query] (``tl.dot``: G^T Q for keys, A^T grad_out for
    values), BLOCK channels a program, each written once. X is the rows
    with inf and NaN entries set to 0 (0 * inf would reach every pixel;
    :func:`_far_corners` added those entries' corners one by one and
    wrote these rows): no elementwise work on the product's operand,
    which the compiler would do in the tensor cores' operand layout,
    where it took every register on sm_80."""
    pixels, on_map, row0, y, x, ty0, tx0 = _tile(H, W, TILE_H, TILE_W)
    ch = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    acc = tl.zeros([TILE_H * TILE_W, BLOCK], ACC)
    reach_y = (KH - 1) // 2 * DH + MARGIN
    reach_x = (KW - 1) // 2 * DW + MARGIN
    tiles_y = tl.cdiv(H, TILE_H)
    tiles_x = tl.cdiv(W, TILE_W)
    image = row0 // (H * W)
    # the query tiles whose halos can reach this tile: a halo starts reach
    # pixels before its tile and spans TILE + 2 reach + 1 pixels, so from
    # (TILE + reach) // TILE tiles above (left of) this one to
    # (reach + TILE - 1) // TILE below (right of) it. (The loop bounds
    # spell reach out: the interpreter cannot take a range of a local.)
    for dy in range((TILE_H + (KH - 1) // 2 * DH + MARGIN) // TILE_H +
                    ((KH - 1) // 2 * DH + MARGIN + TILE_H - 1) // TILE_H + 1):
        qty = ty0 // TILE_H - (TILE_H + reach_y) // TILE_H + dy
        for dx in range((TILE_W + (KW - 1) // 2 * DW + MARGIN) // TILE_W +
                        ((KW - 1) // 2 * DW + MARGIN + TILE_W - 1) // TILE_W +
                        1):
            qtx = tx0 // TILE_W - (TILE_W + reach_x) // TILE_W + dx
            if (qty >= 0) & (qty < tiles_y) & (qtx >= 0) & (qtx < tiles_x):
                tile = ((image * tiles_y + qty) * tiles_x + qtx).to(tl.int64)
                # this tile's pixels in the query tile's halo
                py = y - (qty * TILE_H - reach_y)
                px = x - (qtx * TILE_W - reach_x)
                held = on_map & (py >= 0) & (py < HALO_H) & (px >= 0) & (
                    px < HALO_W)
                coef_at = tl.where(held, py * HALO_W + px, 0)
                # DOT_Q of the query tile's rows a product (how many
                # fit the registers: halo_key_value_launch)
                for q0 in tl.static_range(0, TILE_H * TILE_W, DOT_Q):
                    i = q0 + tl.arange(0, DOT_Q)
                    qy = qty * TILE_H + i // TILE_W
                    qx = qtx * TILE_W + i % TILE_W
                    queries = (qy < H) & (qx < W)
                    coef = tl.load(
                        COEF_TILE +
                        ((tile * (TILE_H * TILE_W) + i) * HALO_PAD)[None, :] +
                        coef_at[:, None],
                        mask=held[:, None] & queries[None, :],
                        other=0.0)
                    acc += _weights_dot(
                        coef, _load_rows(X, row0 + qy * W + qx, queries, ch,
                                         N), ACC, WIDEN)
    # (FAR's rows read last: their addresses held through the loop
    # spilled on sm_80)
    out_at = pixels[:, None] * N + ch[None, :]
    out_ok = on_map[:, None] & (ch[None, :] < N)
    tl.store(
        OUT + out_at,
        acc + tl.load(FAR + out_at, mask=out_ok, other=0.0),
        mask=out_ok)
