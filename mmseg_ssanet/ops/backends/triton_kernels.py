"""Triton kernels of the SNL operator (imported only when they are used).

One program takes ``BLOCK_Q`` query pixels (flat over batch x pixels, rows
of channels-last tensors). K is small (9-121), so a query's K logits fit in
registers as one ``[BLOCK_Q, K_PAD]`` tile and the softmax over them is
exact; channels are only ever held a chunk at a time, which keeps every
tile within the register file whatever Cq and C are (no local memory,
checked ahead of time by ``tools/analysis_tools/triton_resources.py``):

* forward: for each point k, its 4 bilinear corners' key rows are read in
  chunks of ``BLOCK_CQ`` channels and dotted with the query (eqs. 4-6);
  after the softmax, output chunks of ``BLOCK_C`` channels are accumulated
  from the corners' value rows with weight p_k w_kc (eq. 7) and stored.
  Nothing of size N x K is stored, only each query's log-sum-exp;
* backward: per point k the same corner walk gives <q, key_c> and
  <grad_out, value_c> for each corner c over channel chunks, hence p_k
  (from the log-sum-exp) and Delta = sum_k p_k <grad_out, v_k> = <grad_out,
  out> (unrounded, whatever the input dtype); then the logit gradient
  p_k (<grad_out, v_k> - Delta) and the offset gradient. p_k and the
  logit gradients go to [N, K] buffers (read back point by point, not
  from a register tile: triton 2.1 cannot lay out that tile's column
  selection in the later loops). Then the query gradient chunk by chunk,
  and the key and value gradients: added to the corner pixels atomically
  in float32 buffers (the ``atomic`` variant; half-precision atomics
  would lose gradients, bf16 ones exist only on sm_90), or by the segment
  sums over entries sorted by pixel (``sorted``, no atomics).

Everything here compiles under triton 2.1 (torch 2.1's) as well as 3.x:
floor by an integer cast, no launch option 2.1 lacks
(``features.triton_register_cap``).

Inputs of any float dtype are read as they are and accumulated in float32
(float64 for float64 inputs, which gradcheck uses).
"""
import triton
import triton.language as tl


@triton.jit
def _floor(t):
    """floor(t) as int32: the cast truncates toward zero, so a negative
    non-integer steps down one. Exact for |t| < 2**31 (``_points`` keeps t
    within two pixels of the map); no ``tl.floor``, which triton 2.1 lacks.
    """
    i = t.to(tl.int32)
    return tl.where(i.to(t.dtype) > t, i - 1, i)


@triton.jit
def _load_rows(X, rows, mask, ch, N: tl.constexpr):
    """A [rows, channels] chunk of the row-major N-channel tensor X: rows
    ``rows``, channels ``ch``; 0 where ``mask`` is off or ch >= N."""
    return tl.load(
        X + rows[:, None] * N + ch[None, :],
        mask=mask[:, None] & (ch[None, :] < N),
        other=0.0)


@triton.jit
def _corner(ty, tx, H, W, row0, c: tl.constexpr, valid):
    """Corner ``c`` of the points (ty, tx): row index and weight (0 outside
    the map), and the weight's derivatives in ty and tx."""
    y0 = _floor(ty)
    x0 = _floor(tx)
    fy = ty - y0.to(ty.dtype)
    fx = tx - x0.to(tx.dtype)
    cy = y0 + c // 2
    cx = x0 + c % 2
    wy = fy if c // 2 == 1 else 1 - fy
    wx = fx if c % 2 == 1 else 1 - fx
    dwy = 1.0 if c // 2 == 1 else -1.0  # d wy / d ty
    dwx = 1.0 if c % 2 == 1 else -1.0
    inside = valid & (cy >= 0) & (cy < H) & (cx >= 0) & (cx < W)
    row = row0 + tl.where(inside, cy * W + cx, 0)
    w = tl.where(inside, wy * wx, 0.0)
    dw_dy = tl.where(inside, dwy * wx, 0.0)
    dw_dx = tl.where(inside, wy * dwx, 0.0)
    return row, inside, w, dw_dy, dw_dx


@triton.jit
def _points(OFF, rows, kk, y, x, valid, H, W, KH: tl.constexpr,
            KW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr,
            TWO_K: tl.constexpr, ACC: tl.constexpr):
    """Sampling coordinates of point ``kk`` of each query (eq. 4), kept
    within a pixel or two of the map so the integer casts cannot overflow
    (points beyond that have every corner outside anyway), and whether
    they are finite. A NaN or inf position samples nothing here; the
    caller makes its query NaN (GPU min/max would drop a NaN silently).
    Mirrors ``ops/sampling.py``: ``initial_grid`` and ``sampling_positions``
    (eq. 4), -2 is its ``OFF_MAP`` (``finite_positions``); the test
    ``test_sampling_geometry.py`` compares the positions sampled."""
    oy = tl.load(OFF + rows * TWO_K + 2 * kk, mask=valid, other=0.0).to(ACC)
    ox = tl.load(
        OFF + rows * TWO_K + 2 * kk + 1, mask=valid, other=0.0).to(ACC)
    ty = y.to(ACC) + ((kk // KW - (KH - 1) // 2) * DH) + oy
    tx = x.to(ACC) + ((kk % KW - (KW - 1) // 2) * DW) + ox
    finite = (tl.abs(ty) < float('inf')) & (tl.abs(tx) < float('inf'))
    ty = tl.where(finite, tl.minimum(tl.maximum(ty, -2.0), H + 1.0), -2.0)
    tx = tl.where(finite, tl.minimum(tl.maximum(tx, -2.0), W + 1.0), -2.0)
    return ty, tx, finite


@triton.jit
def _query_block(total, H, W, BLOCK_Q: tl.constexpr):
    """This program's query rows (flat over batch x pixels), which are
    real, the first row of their image, and their pixel coordinates."""
    rows = tl.program_id(0) * BLOCK_Q + tl.arange(0, BLOCK_Q)
    n_pix = H * W
    return (rows, rows
            < total, (rows // n_pix) * n_pix, (rows % n_pix) // W, rows % W)


@triton.jit
def _point_dots(X, rows, valid, CORNERS, ty, tx, H, W, row0, N: tl.constexpr,
                BLOCK: tl.constexpr, ACC: tl.constexpr):
    """For the points (ty, tx): sum over corners c of w_c, d w_c / d ty and
    d w_c / d tx times <X[rows], CORNERS[row_c]>, over all N channels a
    chunk at a time (the X chunk read once for the 4 corners, the corners
    recomputed per chunk: arithmetic is cheaper than registers)."""
    dot = tl.zeros(rows.shape, ACC)
    dot_dy = tl.zeros(rows.shape, ACC)
    dot_dx = tl.zeros(rows.shape, ACC)
    for c0 in range(0, N, BLOCK):
        ch = c0 + tl.arange(0, BLOCK)
        x = _load_rows(X, rows, valid, ch, N).to(ACC)
        for c in tl.static_range(4):
            row, inside, w, dw_dy, dw_dx = _corner(ty, tx, H, W, row0, c,
                                                   valid)
            r = _load_rows(CORNERS, row, inside, ch, N).to(ACC)
            d = tl.sum(x * r, axis=1)
            dot += w * d
            dot_dy += dw_dy * d
            dot_dx += dw_dx * d
    return dot, dot_dy, dot_dx


@triton.jit
def _column(tile, kidx, kk):
    """Column ``kk`` of a [BLOCK_Q, K_PAD] register tile."""
    return tl.sum(tl.where(kidx[None, :] == kk, tile, 0.0), axis=1)


@triton.jit
def _put_column(tile, kidx, kk, column):
    return tl.where(kidx[None, :] == kk, column[:, None], tile)


@triton.jit
def snl_forward_kernel(Q, KEY, V, OFF, OUT, LSE, total, H, W, scale,
                       CQ: tl.constexpr, C: tl.constexpr, KH: tl.constexpr,
                       KW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr,
                       K_PAD: tl.constexpr, BLOCK_Q: tl.constexpr,
                       BLOCK_CQ: tl.constexpr, BLOCK_C: tl.constexpr,
                       ACC: tl.constexpr):
    rows, valid, row0, y, x = _query_block(total, H, W, BLOCK_Q)
    kidx = tl.arange(0, K_PAD)
    # logits of every point: [BLOCK_Q, K_PAD], padding columns -inf
    logits = tl.where(kidx[None, :] < KH * KW, 0.0, float('-inf')) + tl.zeros(
        [BLOCK_Q, K_PAD], ACC)
    all_finite = valid
    for kk in range(KH * KW):
        ty, tx, finite = _points(OFF, rows, kk, y, x, valid, H, W, KH, KW, DH,
                                 DW, 2 * KH * KW, ACC)
        all_finite = all_finite & finite
        logit, _, _ = _point_dots(Q, rows, valid, KEY, ty, tx, H, W, row0, CQ,
                                  BLOCK_CQ, ACC)
        logits = _put_column(logits, kidx, kk, logit * scale)
    # exact softmax over the K points (eq. 6)
    m = tl.max(logits, axis=1)
    e = tl.exp(logits - m[:, None])
    s = tl.sum(e, axis=1)
    prob = e / s[:, None]
    # eq. 7, BLOCK_C output channels at a time
    for c0 in range(0, C, BLOCK_C):
        ch = c0 + tl.arange(0, BLOCK_C)
        ch_ok = ch[None, :] < C
        acc = tl.zeros([BLOCK_Q, BLOCK_C], ACC)
        for kk in range(KH * KW):
            ty, tx, _ = _points(OFF, rows, kk, y, x, valid, H, W, KH, KW, DH,
                                DW, 2 * KH * KW, ACC)
            p = _column(prob, kidx, kk)
            for c in tl.static_range(4):
                row, inside, w, _, _ = _corner(ty, tx, H, W, row0, c, valid)
                val = _load_rows(V, row, inside, ch, C).to(ACC)
                acc += (p * w)[:, None] * val
        # NaN out for a query with a non-finite position; its NaN
        # log-sum-exp carries NaN through the backward too.
        out = tl.where(all_finite[:, None], acc, float('nan'))
        tl.store(
            OUT + rows[:, None] * C + ch[None, :],
            out.to(OUT.dtype.element_ty),
            mask=valid[:, None] & ch_ok)
    tl.store(
        LSE + rows,
        tl.where(all_finite, m + tl.log(s), float('nan')),
        mask=valid)


@triton.jit
def _point_terms(PROB, GRAD_LOGIT, GRAD_OFF, QK_D, rows, valid, kk, lse, scale,
                 logit, qk_dy, qk_dx, grad_p, gv_dy, gv_dx, K: tl.constexpr):
    """Point ``kk``'s pass-1 terms of the backward, from <q, key_k>
    (``logit``) and <grad_out, v_k> (``grad_p``) and their d w / d t
    weighted sums: p_k (PROB), <grad_out, v_k> (GRAD_LOGIT until
    :func:`_logit_gradients`), the offset gradient's p_k part (GRAD_OFF)
    and the weighted <q, key_c> its logit-gradient part needs (QK_D).
    Returns p_k <grad_out, v_k>, the point's term of Delta."""
    p = tl.where(valid, tl.exp(logit * scale - lse), 0.0)
    at = rows * (2 * K) + 2 * kk
    tl.store(GRAD_OFF + at, p * gv_dy, mask=valid)
    tl.store(GRAD_OFF + at + 1, p * gv_dx, mask=valid)
    tl.store(QK_D + at, qk_dy, mask=valid)
    tl.store(QK_D + at + 1, qk_dx, mask=valid)
    tl.store(PROB + rows * K + kk, p, mask=valid)
    tl.store(GRAD_LOGIT + rows * K + kk, grad_p, mask=valid)
    return p * grad_p


@triton.jit
def _logit_gradients(PROB, GRAD_LOGIT, GRAD_OFF, QK_D, rows, valid, delta,
                     scale, K: tl.constexpr):
    """With Delta known: the logit gradient g_k = p_k (<grad_out, v_k> -
    Delta) into GRAD_LOGIT, and the offset gradient d out / d w_kc = p_k
    <go, value_c> + g_k <q, key_c>, weighted by d w_kc / d t, into
    GRAD_OFF."""
    for kk in range(K):
        at = rows * K + kk
        p = tl.load(PROB + at, mask=valid, other=0.0)
        grad_p = tl.load(GRAD_LOGIT + at, mask=valid, other=0.0)
        g = p * (grad_p - delta) * scale
        at_off = rows * (2 * K) + 2 * kk
        offset_y = tl.load(GRAD_OFF + at_off, mask=valid, other=0.0) + g * \
            tl.load(QK_D + at_off, mask=valid, other=0.0)
        offset_x = tl.load(GRAD_OFF + at_off + 1, mask=valid, other=0.0) + \
            g * tl.load(QK_D + at_off + 1, mask=valid, other=0.0)
        # rewritten in place: every thread holding a copy has read them
        tl.debug_barrier()
        tl.store(GRAD_LOGIT + at, g, mask=valid)
        tl.store(GRAD_OFF + at_off, offset_y, mask=valid)
        tl.store(GRAD_OFF + at_off + 1, offset_x, mask=valid)


@triton.jit
def snl_backward_kernel(Q, KEY, V, OFF, GRAD_OUT, LSE, GRAD_Q, GRAD_KEY,
                        GRAD_V, GRAD_OFF, PROB, GRAD_LOGIT, QK_D, total, H, W,
                        scale, CQ: tl.constexpr, C: tl.constexpr,
                        KH: tl.constexpr, KW: tl.constexpr, DH: tl.constexpr,
                        DW: tl.constexpr, BLOCK_Q: tl.constexpr,
                        BLOCK_CQ: tl.constexpr, BLOCK_C: tl.constexpr,
                        KEY_VALUE_ATOMICS: tl.constexpr, ACC: tl.constexpr):
    # KEY_VALUE_ATOMICS (the 'atomic' variant): the key and value gradients
    # added to the corner pixels here; else from PROB and GRAD_LOGIT
    # afterwards (snl_segment_sum_kernel, or the halo tiles).
    rows, valid, row0, y, x = _query_block(total, H, W, BLOCK_Q)
    lse = tl.load(LSE + rows, mask=valid, other=0.0).to(ACC)
    two_k = 2 * KH * KW
    # pass 1, point by point: per corner <q, key_c> and <grad_out, value_c>
    # give p_k (PROB), <grad_out, v_k> (GRAD_LOGIT until pass 1b), the
    # offset gradient's p_k part (GRAD_OFF) and the weighted <q, key_c>
    # its logit-gradient part needs (QK_D); and the softmax backward's
    # Delta = sum_k p_k <grad_out, v_k> = <grad_out, out>, from the
    # unrounded terms whatever the input dtype (no second forward).
    delta = tl.zeros(rows.shape, ACC)
    for kk in range(KH * KW):
        ty, tx, _ = _points(OFF, rows, kk, y, x, valid, H, W, KH, KW, DH, DW,
                            two_k, ACC)
        # d w_kc / d t weighted sums of <q, key_c> and <grad_out, value_c>
        logit, qk_dy, qk_dx = _point_dots(Q, rows, valid, KEY, ty, tx, H, W,
                                          row0, CQ, BLOCK_CQ, ACC)
        grad_p, gv_dy, gv_dx = _point_dots(GRAD_OUT, rows, valid, V, ty, tx, H,
                                           W, row0, C, BLOCK_C, ACC)
        delta += _point_terms(PROB, GRAD_LOGIT, GRAD_OFF, QK_D, rows, valid,
                              kk, lse, scale, logit, qk_dy, qk_dx, grad_p,
                              gv_dy, gv_dx, KH * KW)
    # the stores above, visible to every thread of the program below
    tl.debug_barrier()
    # pass 1b, Delta known: the logit and offset gradients
    _logit_gradients(PROB, GRAD_LOGIT, GRAD_OFF, QK_D, rows, valid, delta,
                     scale, KH * KW)
    tl.debug_barrier()
    # pass 2: query gradient (stored) and key gradient (atomics), by chunks
    for c0 in range(0, CQ, BLOCK_CQ):
        ch = c0 + tl.arange(0, BLOCK_CQ)
        ch_ok = ch[None, :] < CQ
        q = _load_rows(Q, rows, valid, ch, CQ).to(ACC)
        grad_q = tl.zeros([BLOCK_Q, BLOCK_CQ], ACC)
        for kk in range(KH * KW):
            ty, tx, _ = _points(OFF, rows, kk, y, x, valid, H, W, KH, KW, DH,
                                DW, two_k, ACC)
            g = tl.load(
                GRAD_LOGIT + rows * (KH * KW) + kk, mask=valid, other=0.0)
            for c in tl.static_range(4):
                row, inside, w, _, _ = _corner(ty, tx, H, W, row0, c, valid)
                mask = inside[:, None] & ch_ok
                key = _load_rows(KEY, row, inside, ch, CQ).to(ACC)
                grad_q += (g * w)[:, None] * key
                if KEY_VALUE_ATOMICS:
                    tl.atomic_add(
                        GRAD_KEY + row[:, None] * CQ + ch[None, :],
                        (g * w)[:, None] * q,
                        mask=mask)
        tl.store(
            GRAD_Q + rows[:, None] * CQ + ch[None, :],
            grad_q,
            mask=valid[:, None] & ch_ok)
    # pass 3: value gradient (atomics), by chunks
    if KEY_VALUE_ATOMICS:
        for c0 in range(0, C, BLOCK_C):
            ch = c0 + tl.arange(0, BLOCK_C)
            ch_ok = ch[None, :] < C
            go = _load_rows(GRAD_OUT, rows, valid, ch, C).to(ACC)
            for kk in range(KH * KW):
                ty, tx, _ = _points(OFF, rows, kk, y, x, valid, H, W, KH, KW,
                                    DH, DW, two_k, ACC)
                p = tl.load(
                    PROB + rows * (KH * KW) + kk, mask=valid, other=0.0)
                for c in tl.static_range(4):
                    row, inside, w, _, _ = _corner(ty, tx, H, W, row0, c,
                                                   valid)
                    tl.atomic_add(
                        GRAD_V + row[:, None] * C + ch[None, :],
                        (p * w)[:, None] * go,
                        mask=inside[:, None] & ch_ok)


@triton.jit
def snl_segment_sum_kernel(SRC, ENTRY_ROW, ENTRY_COEF, STARTS, OUT,
                           N: tl.constexpr, BLOCK_E: tl.constexpr,
                           BLOCK: tl.constexpr, ACC: tl.constexpr):
    """OUT[pixel] = sum over the pixel's entries e of ENTRY_COEF[e] *
    SRC[ENTRY_ROW[e]], entries STARTS[pixel]:STARTS[pixel + 1] of a list
    sorted by pixel; one program per pixel and chunk of N channels, so the
    sum has one fixed order (the deterministic key and value gradients)."""
    pixel = tl.program_id(0)
    ch = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    ch_ok = ch < N
    start = tl.load(STARTS + pixel)
    end = tl.load(STARTS + pixel + 1)
    acc = tl.zeros([BLOCK], ACC)
    # A while loop, not range(start, end): the interpreter turns range's
    # bounds into Python ints, which numpy>=2.4 refuses for the [1]-shaped
    # arrays it holds scalars in ('only 0-dimensional arrays can be
    # converted'); a loop condition is read with bool(), which it accepts.
    e0 = start
    while e0 < end:
        e = e0 + tl.arange(0, BLOCK_E)
        ok = e < end
        row = tl.load(ENTRY_ROW + e, mask=ok, other=0)
        coef = tl.load(ENTRY_COEF + e, mask=ok, other=0.0).to(ACC)
        src = _load_rows(SRC, row, ok, ch, N).to(ACC)
        acc += tl.sum(coef[:, None] * src, axis=0)
        e0 += BLOCK_E
    tl.store(OUT + pixel * N + ch, acc, mask=ch_ok)
