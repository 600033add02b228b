"""The blocks ``benchmark_snl.py`` times, by name, and what each needs.

``snl`` is :class:`SparseNonLocal2d` on the device's default backend;
``snl_csr`` and ``snl_reference`` the same block on those backends;
``floor`` its own 1x1 convolutions as one GEMM, then gamma (what a perfect
SNL block would cost), ``floor_separate`` those convolutions one by one;
``nonlocal2d`` mmcv's ``NonLocal2d`` (embedded Gaussian, scaled, as mmseg's
``NLHead``); ``dense_sdpa`` that block on
``F.scaled_dot_product_attention``.
"""
from typing import List

import torch

from .baselines import ConvFloor, DenseNonLocal, sdpa_attention

MAP_SIZES = {  # the paper's maps at output stride 16, and between
    '49x49': 49 * 49,
    '64x128': 64 * 128,
    '97x97': 97**2,
    '128x256': 128 * 256
}
BLOCKS = ('snl', 'snl_csr', 'snl_reference', 'floor', 'floor_separate',
          'nonlocal2d', 'dense_sdpa')


def build_block(name: str, channels: int, num_samples: int,
                offset_std: float) -> torch.nn.Module:
    """The block ``name`` (:data:`BLOCKS`) for ``channels`` input channels,
    its offsets trained-like: about ``offset_std`` pixels for a standard
    normal input."""
    from ..models import SparseNonLocal2d
    if name == 'nonlocal2d':
        from mmcv.cnn import NonLocal2d
        return NonLocal2d(
            channels, reduction=2, use_scale=True, mode='embedded_gaussian')
    if name == 'dense_sdpa':
        return DenseNonLocal(channels, sdpa_attention)
    backend = dict(snl_csr='csr', snl_reference='reference').get(name)
    block = SparseNonLocal2d(
        channels, num_samples=num_samples, backend=backend)
    torch.nn.init.normal_(
        block.offset.conv.weight, std=offset_std / channels**0.5)
    if name.startswith('floor'):
        convs = [
            m.conv for m in (block.theta, block.phi, block.g, block.offset)
        ]
        return ConvFloor(convs, block.gamma, fused=name == 'floor')
    return block


def estimate_gb(name: str, n: int, channels: int, batch: int, k: int,
                backward: bool) -> float:
    """A rough upper bound of a pass's memory (GB), to skip what cannot
    fit: inputs and outputs, and what each block keeps of size N x N or
    N x K (the fused kernel and the floor keep nothing of either)."""
    extra = {
        'nonlocal2d':
        batch * n * n * 4 * (4 if backward else 2),
        'snl_reference':
        batch * n * k * (channels + channels // 2) * 4 *
        (3 if backward else 1),
        'snl_csr':
        batch * n * 4 * k * 8 * (6 if backward else 3),
        # O(N) forward; its CPU backward measured ~3 N x N
        'dense_sdpa':
        batch * n * n * 4 * 3 if backward else 0
    }.get(name, 0)
    return (8 * batch * n * channels * 4 + extra) / 2**30


RATIOS = [  # what, the measure, numerator, denominator
    ('SNL fwd / floor', 'forward_ms', 'snl', 'floor'),
    ('SNL fwd+bwd / floor', 'forward_backward_ms', 'snl', 'floor'),
    ('SNL fwd / NonLocal2d', 'forward_ms', 'snl', 'nonlocal2d'),
    ('SNL fwd time 128x256 / 64x128', 'forward_ms', 'snl', 'snl'),
    ('SNL fwd+bwd time 128x256 / 64x128', 'forward_backward_ms', 'snl', 'snl'),
    ('SNL peak memory fwd+bwd / NonLocal2d', 'peak_mem_mb', 'snl',
     'nonlocal2d'),
    ('floor, convs one by one / as one GEMM (fwd)', 'forward_ms',
     'floor_separate', 'floor'),
    ('SNL csr / cpp (fwd)', 'forward_ms', 'snl_csr', 'snl'),
]


def block_ratios(rows: List[dict]) -> List[dict]:
    """The ratios the fused kernel is judged by (the goals live in
    docs/benchmarks.md), of ``benchmark_snl.py``'s ``rows``.

    Each row gets its ratios to ``nonlocal2d`` of the same size, channels
    and batch (``forward_ratio``, ``forward_backward_ratio``,
    ``peak_mem_ratio``).

    Returns:
        list[dict]: per channels, batch and ratio of :data:`RATIOS` (``what``)
        its ``values`` at each size (``None`` where one side is missing).
    """
    group = ('size_name', 'channels', 'batch')
    dense = {
        tuple(r[k] for k in group): r
        for r in rows if r['method'] == 'nonlocal2d'
    }
    for r in rows:
        ref = dense.get(tuple(r[k] for k in group), {})
        for key in ('forward_ms', 'forward_backward_ms', 'peak_mem_mb'):
            if ref.get(key) and key in r:
                r[key.rsplit('_', 1)[0] + '_ratio'] = r[key] / ref[key]
    table = []
    for c, b in sorted({(r['channels'], r['batch']) for r in rows}):
        got = {
            (r['size_name'], r['method']): r
            for r in rows if r['channels'] == c and r['batch'] == b
        }
        for what, key, num, den in RATIOS:
            pairs = {
                s: (s, s)
                for s in MAP_SIZES if any(s == g for g, _ in got)
            }
            if what.endswith('/ 64x128'):  # the growth with N: one value
                pairs = {'': ('128x256', '64x128')}
            values = {}
            for name, (a, d) in pairs.items():
                a, d = (got.get((s, m), {}).get(key)
                        for s, m in ((a, num), (d, den)))
                values[name] = a / d if a and d else None
            table.append(dict(channels=c, batch=b, what=what, values=values))
    return table
