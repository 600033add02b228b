"""Triton kernels of the SNL operator (imported only when they are used).

One program takes ``BLOCK_Q`` query pixels (flat over batch x pixels, rows
of channels-last tensors) and walks their K sampling points once:

* forward: for point k, the 4 bilinear corners' key rows give the logit
  (eqs. 4-6), an online softmax (running max and sum in float32, as in
  flash attention) rescales the accumulator, and the corners' value rows
  are added with weight p_k w_kc (eq. 7). Nothing of size N x K is stored,
  only the log-sum-exp of each query for the backward;
* backward: the same walk recomputes p_k = exp(logit_k - lse); with
  Delta = <grad_out, out> the logit gradient is p_k (<grad_out, v_k> -
  Delta); the query and offset gradients are accumulated per query, the
  key and value gradients are added to the corner pixels atomically.

Inputs of any float dtype are read as they are and accumulated in float32
(float64 for float64 inputs, which gradcheck uses).
"""
import triton
import triton.language as tl


@triton.jit
def _corner(ty, tx, H, W, row0, c: tl.constexpr, valid):
    """Corner ``c`` of the points (ty, tx): row index and weight (0 outside
    the map), and the weight's derivatives in ty and tx."""
    y0 = tl.floor(ty)
    x0 = tl.floor(tx)
    fy = ty - y0
    fx = tx - x0
    cy = y0.to(tl.int32) + c // 2
    cx = x0.to(tl.int32) + c % 2
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
def _points(OFF, rows, kk, y, x, valid, H, W, KW: tl.constexpr,
            KH: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr,
            TWO_K: tl.constexpr, ACC: tl.constexpr):
    """Sampling coordinates of point ``kk`` of each query (eq. 4), kept
    within a pixel or two of the map so the integer casts cannot overflow
    (points beyond that have every corner outside anyway), and whether
    they are finite. A NaN or inf position samples nothing here; the
    caller makes its query NaN (GPU min/max would drop a NaN silently)."""
    oy = tl.load(OFF + rows * TWO_K + 2 * kk, mask=valid, other=0.0).to(ACC)
    ox = tl.load(OFF + rows * TWO_K + 2 * kk + 1, mask=valid,
                 other=0.0).to(ACC)
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
    return (rows, rows < total, (rows // n_pix) * n_pix, (rows % n_pix) // W,
            rows % W)


@triton.jit
def snl_forward_kernel(Q, KEY, V, OFF, OUT, LSE, total, H, W, scale,
                       CQ: tl.constexpr, C: tl.constexpr, KH: tl.constexpr,
                       KW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr,
                       BLOCK_Q: tl.constexpr, BLOCK_CQ: tl.constexpr,
                       BLOCK_C: tl.constexpr, ACC: tl.constexpr):
    rows, valid, row0, y, x = _query_block(total, H, W, BLOCK_Q)
    cq = tl.arange(0, BLOCK_CQ)
    cv = tl.arange(0, BLOCK_C)
    q_mask = valid[:, None] & (cq[None, :] < CQ)
    q = tl.load(Q + rows[:, None] * CQ + cq[None, :], mask=q_mask,
                other=0.0).to(ACC)
    m = tl.full([BLOCK_Q], float('-inf'), ACC)
    s = tl.zeros([BLOCK_Q], ACC)
    acc = tl.zeros([BLOCK_Q, BLOCK_C], ACC)
    all_finite = valid
    for kk in range(KH * KW):
        ty, tx, finite = _points(OFF, rows, kk, y, x, valid, H, W, KW, KH,
                                 DH, DW, 2 * KH * KW, ACC)
        all_finite = all_finite & finite
        logit = tl.zeros([BLOCK_Q], ACC)
        for c in tl.static_range(4):
            row, inside, w, _, _ = _corner(ty, tx, H, W, row0, c, valid)
            key = tl.load(KEY + row[:, None] * CQ + cq[None, :],
                          mask=inside[:, None] & (cq[None, :] < CQ),
                          other=0.0).to(ACC)
            logit += w * tl.sum(q * key, axis=1)
        logit = logit * scale
        m_new = tl.maximum(m, logit)
        alpha = tl.exp(m - m_new)
        p = tl.exp(logit - m_new)
        s = s * alpha + p
        acc = acc * alpha[:, None]
        for c in tl.static_range(4):
            row, inside, w, _, _ = _corner(ty, tx, H, W, row0, c, valid)
            val = tl.load(V + row[:, None] * C + cv[None, :],
                          mask=inside[:, None] & (cv[None, :] < C),
                          other=0.0).to(ACC)
            acc += (p * w)[:, None] * val
        m = m_new
    # NaN out for a query with a non-finite position; its NaN log-sum-exp
    # carries NaN through the backward too.
    out = tl.where(all_finite[:, None], acc / s[:, None], float('nan'))
    tl.store(OUT + rows[:, None] * C + cv[None, :],
             out.to(OUT.dtype.element_ty),
             mask=valid[:, None] & (cv[None, :] < C))
    tl.store(LSE + rows, tl.where(all_finite, m + tl.log(s), float('nan')),
             mask=valid)


@triton.jit
def snl_backward_kernel(Q, KEY, V, OFF, GRAD_OUT, LSE, DELTA, GRAD_Q,
                        GRAD_KEY, GRAD_V, GRAD_OFF, total, H, W, scale,
                        CQ: tl.constexpr, C: tl.constexpr, KH: tl.constexpr,
                        KW: tl.constexpr, DH: tl.constexpr,
                        DW: tl.constexpr, BLOCK_Q: tl.constexpr,
                        BLOCK_CQ: tl.constexpr, BLOCK_C: tl.constexpr,
                        ACC: tl.constexpr):
    rows, valid, row0, y, x = _query_block(total, H, W, BLOCK_Q)
    cq = tl.arange(0, BLOCK_CQ)
    cv = tl.arange(0, BLOCK_C)
    cq_ok = cq[None, :] < CQ
    cv_ok = cv[None, :] < C
    q = tl.load(Q + rows[:, None] * CQ + cq[None, :],
                mask=valid[:, None] & cq_ok, other=0.0).to(ACC)
    go = tl.load(GRAD_OUT + rows[:, None] * C + cv[None, :],
                 mask=valid[:, None] & cv_ok, other=0.0).to(ACC)
    lse = tl.load(LSE + rows, mask=valid, other=0.0).to(ACC)
    delta = tl.load(DELTA + rows, mask=valid, other=0.0).to(ACC)
    grad_q = tl.zeros([BLOCK_Q, BLOCK_CQ], ACC)
    for kk in range(KH * KW):
        ty, tx, _ = _points(OFF, rows, kk, y, x, valid, H, W, KW, KH, DH,
                            DW, 2 * KH * KW, ACC)
        # pass 1: the logit and <grad_out, sampled value> of point kk
        logit = tl.zeros([BLOCK_Q], ACC)
        grad_p = tl.zeros([BLOCK_Q], ACC)
        for c in tl.static_range(4):
            row, inside, w, _, _ = _corner(ty, tx, H, W, row0, c, valid)
            key = tl.load(KEY + row[:, None] * CQ + cq[None, :],
                          mask=inside[:, None] & cq_ok, other=0.0).to(ACC)
            val = tl.load(V + row[:, None] * C + cv[None, :],
                          mask=inside[:, None] & cv_ok, other=0.0).to(ACC)
            logit += w * tl.sum(q * key, axis=1)
            grad_p += w * tl.sum(go * val, axis=1)
        p = tl.where(valid, tl.exp(logit * scale - lse), 0.0)
        grad_logit = p * (grad_p - delta) * scale
        # pass 2: gradients of the corners' rows and of their weights
        grad_ty = tl.zeros([BLOCK_Q], ACC)
        grad_tx = tl.zeros([BLOCK_Q], ACC)
        for c in tl.static_range(4):
            row, inside, w, dw_dy, dw_dx = _corner(ty, tx, H, W, row0, c,
                                                   valid)
            key_mask = inside[:, None] & cq_ok
            val_mask = inside[:, None] & cv_ok
            key = tl.load(KEY + row[:, None] * CQ + cq[None, :],
                          mask=key_mask, other=0.0).to(ACC)
            val = tl.load(V + row[:, None] * C + cv[None, :], mask=val_mask,
                          other=0.0).to(ACC)
            grad_q += (grad_logit * w)[:, None] * key
            tl.atomic_add(GRAD_KEY + row[:, None] * CQ + cq[None, :],
                          (grad_logit * w)[:, None] * q, mask=key_mask)
            tl.atomic_add(GRAD_V + row[:, None] * C + cv[None, :],
                          (p * w)[:, None] * go, mask=val_mask)
            grad_w = (p * tl.sum(go * val, axis=1)
                      + grad_logit * tl.sum(q * key, axis=1))
            grad_ty += grad_w * dw_dy
            grad_tx += grad_w * dw_dx
        two_k = 2 * KH * KW
        tl.store(GRAD_OFF + rows * two_k + 2 * kk, grad_ty, mask=valid)
        tl.store(GRAD_OFF + rows * two_k + 2 * kk + 1, grad_tx, mask=valid)
    tl.store(GRAD_Q + rows[:, None] * CQ + cq[None, :], grad_q,
             mask=valid[:, None] & cq_ok)
