"""Atomic updates and global memory traffic of the Triton SNL kernels,
counted under Triton's interpreter with no GPU.

Runs the ``triton`` backend's forward and backward on CPU tensors under
``TRITON_INTERPRET=1``, once per backward variant
(``SSANET_TRITON_BACKWARD``: ``atomic``, ``sorted``, ``halo``), and
counts per kernel the elements that every
``tl.load``, ``tl.store`` and ``tl.atomic_add`` touches (lanes masked off
excluded) and their bytes. Every count must equal its closed form
(:func:`closed_form`; atomic updates: Cq + C per (query, point, corner)
whose corner lies inside the map, none for ``sorted``), or the tool fails.
The closed form then gives the paper's shapes, every corner inside the map:
4 N K (Cq + C) atomic updates, and the bytes the backward's kernels
request (gathered corner rows in full: an upper bound on DRAM traffic).
(The ``sorted`` variant's sort and entry gathers run as torch operations
and are not counted.) The ``halo`` forward (``SSANET_TRITON_FORWARD``)
and the ``halo`` backward run together on an 11x19 map with corners
beyond their tiles' halos, checked against their own closed forms
(:func:`halo_closed_form`, :func:`halo_backward_forms`); at the
paper's shapes the table gives the MB each forward requests.

Example::

    python tools/analysis_tools/triton_traffic.py \
        --out work_dirs/triton_traffic
"""
import argparse
import collections
import os
import os.path as osp
import sys

os.environ['TRITON_INTERPRET'] = '1'  # before triton is imported
# the repo root: this tool runs from a plain checkout (a bare GPU machine)
sys.path.insert(0, osp.abspath(osp.join(__file__, *['..'] * 3)))

VARIANTS = ('atomic', 'sorted', 'halo')
# the variants counted with the gather forward on the small map
GATHER_COUNTED = ('atomic', 'sorted')
# (name, Cq, C): R101 (Cityscapes, ADE20K, PASCAL Context), MobileNetV2
CHANNELS = (('R101', 256, 512), ('MobileNetV2', 128, 256))
# the halo forward's counted map: two tiles down, three across, 11 x 19
HALO_COUNTED = (11, 19)
# (name, B, H, W): the configs' 769x769 training crop at output stride 16,
# a 1024x2048 image and 2048x4096 at stride 16
MAPS = (('49x49, B 2', 2, 49, 49), ('64x128', 1, 64, 128), ('128x256', 1, 128,
                                                            256))


class Counter:
    """Elements and bytes per (kernel, access) while installed."""

    def __init__(self):
        self.counts = collections.defaultdict(lambda: [0, 0])
        self.kernel = None

    def add(self, access, mask, dtype):
        row = self.counts[(self.kernel, access)]
        n = int(mask.data.sum())
        row[0] += n
        row[1] += n * dtype.primitive_bitwidth // 8

    def install(self):
        from triton.runtime import interpreter as it
        builder, executor = it.InterpreterBuilder, it.GridExecutor
        needed = ('create_masked_load', 'create_masked_store',
                  'create_atomic_rmw')
        if not all(hasattr(builder, name) for name in needed):
            sys.exit('error: this triton\'s interpreter has no '
                     f'{", ".join(needed)} to count accesses with')
        load, store = builder.create_masked_load, builder.create_masked_store
        atomic, launch = builder.create_atomic_rmw, executor.__call__
        counter = self

        def counted_load(self, ptrs, mask, *args):
            counter.add('load', mask, ptrs.get_element_ty())
            return load(self, ptrs, mask, *args)

        def counted_store(self, ptrs, value, mask, *args):
            counter.add('store', mask, ptrs.get_element_ty())
            return store(self, ptrs, value, mask, *args)

        def counted_atomic(self, op, ptr, val, mask, *args):
            counter.add('atomic', mask, val.dtype.scalar)
            return atomic(self, op, ptr, val, mask, *args)

        def named_launch(self, *args, **kwargs):
            counter.kernel = self.fn.__name__
            return launch(self, *args, **kwargs)

        builder.create_masked_load, builder.create_masked_store = (
            counted_load, counted_store)
        builder.create_atomic_rmw, executor.__call__ = (counted_atomic,
                                                        named_launch)


def corners_inside(off, shape, kernel):
    """(query, point, corner) entries whose corner is inside the map."""
    import torch

    from mmseg_ssanet.ops.backends.triton_sums import corner_entries
    rows = off.permute(0, 2, 3, 1).reshape(-1, off.shape[1])
    return corner_entries(rows, shape, (kernel, kernel), (1, 1),
                          torch.float64)[0].numel()


def chunks(width):
    """Channel chunks a program walks (``launch_config``'s: 32 channels,
    fewer as a power of two for narrower rows)."""
    return -(-width // min(32, 1 << max(width - 1, 0).bit_length()))


def _totals(forms):
    """(kernel, access) -> [(elements, bytes an element)] summed."""
    return {
        key: (sum(m for m, _ in parts), sum(m * size for m, size in parts))
        for key, parts in forms.items()
    }


def closed_form(n, e, cq, c, k, data, variant, geometry=None):
    """(kernel, access) -> (elements, bytes) of a forward and backward.

    ``n`` queries, ``e`` corners inside the map, ``data`` bytes an input
    element (offsets, log-sum-exp and the float32 buffers: 4; int64: 8).
    A program reads the query (or grad_out) chunk again for each point in
    the logit pass, the offsets again for each channel chunk of the later
    passes, and the corner rows once per corner inside the map. The
    ``halo`` variant's tile kernels need its ``geometry``
    (:func:`halo_geometry`).
    """
    per_corner = dict(q=(n * k * cq + e * cq, data), off=(2 * n * k, 4))
    forms = {
        ('snl_forward_kernel', 'load'):
        [per_corner['q'], (e * c, data), (2 * n * k * (1 + chunks(c)), 4)],
        ('snl_forward_kernel', 'store'): [(n * c, data), (n, 4)],
    }
    if variant == 'halo':  # its own kernels, gather forward's log-sum-exp
        forms.update(halo_backward_forms(n, geometry, cq, c, k, data))
        return _totals(forms)
    forms.update({
        ('snl_backward_kernel', 'load'): [
            (n, 4),  # the log-sum-exp
            (6 * n * k, 4),  # pass 1b: p_k, <go, v_k>, offset terms
            per_corner['q'],
            per_corner['off'],
            (n * k * c + e * c, data),  # <grad_out, value corner> per point
            (n * cq + e * cq, data),
            (2 * n * k * chunks(cq), 4),  # dq pass: offsets,
            (n * k * chunks(cq), 4)  # the logit gradients read back
        ],
        # the query gradient; pass 1: p_k, <go, v_k>, the offset
        # gradient's two parts; pass 1b: the logit and offset gradients
        ('snl_backward_kernel', 'store'): [(n * cq + 9 * n * k, 4)],
    })
    if variant == 'atomic':  # the value pass: grad_out, offsets, p_k
        forms['snl_backward_kernel', 'load'] += [(n * c, data),
                                                 (3 * n * k * chunks(c), 4)]
        forms['snl_backward_kernel', 'atomic'] = [(e * (cq + c), 4)]
    else:  # one program per pixel and chunk
        forms['snl_segment_sum_kernel', 'load'] = [
            (m, size) for width in (cq, c)
            for m, size in ((2 * n * chunks(width), 8), (e * chunks(width), 8),
                            (e * chunks(width), 4), (e * width, data))
        ]
        forms['snl_segment_sum_kernel', 'store'] = [(n * (cq + c), 4)]
    return _totals(forms)


def _halo_extent(size, tile, window, dilation, margin):
    """Halo pixels on the map along one axis, summed over the tiles."""
    reach = (window - 1) // 2 * dilation + margin
    span = tile + (window - 1) * dilation + 2 * margin + 1
    return sum(
        min(size, t0 - reach + span) - max(0, t0 - reach)
        for t0 in range(0, size, tile))


def _owner_sums(size, tile, window, dilation, margin):
    """Along one axis, for the key and value kernel: the query tiles' halo
    pixels on the map times their queries, summed over the query tiles;
    and the query tiles each pixel tile visits (those whose halos can
    reach it, on the map) times their queries, summed over the pixel
    tiles."""
    reach = (window - 1) // 2 * dilation + margin
    span = tile + (window - 1) * dilation + 2 * margin + 1
    tiles = -(-size // tile)

    def queries(t):
        return min(size, (t + 1) * tile) - t * tile

    held = sum(
        (min(size, t * tile - reach + span) - max(0, t * tile - reach)) *
        queries(t) for t in range(tiles))
    back, ahead = (tile + reach) // tile, (reach + tile - 1) // tile
    visited = sum(
        queries(t) for p in range(tiles)
        for t in range(max(0, p - back), min(tiles, p + ahead + 1)))
    return held, visited


def halo_geometry(shape, kernel, cq, c, off=None):
    """What the halo forward's accesses depend on, for ``off`` (None: every
    corner inside the map and its tile's halo): tiles, halo pixels on the
    map summed over tiles, corners in a halo and beyond it (inside the
    map), and the queries of tiles that have a corner beyond it."""
    import torch

    from mmseg_ssanet.ops.backends.triton_launch import halo_config
    from mmseg_ssanet.ops.backends.triton_sums import corner_entries
    b, h, w = shape
    config = halo_config(cq, c, (kernel, kernel), (1, 1))
    th, tw, margin = config['TILE_H'], config['TILE_W'], config['MARGIN']
    tiles = b * -(-h // th) * -(-w // tw)
    halo = b * (
        _halo_extent(h, th, kernel, 1, margin) *
        _halo_extent(w, tw, kernel, 1, margin))
    (held_y, visited_y), (held_x,
                          visited_x) = (_owner_sums(size, t, kernel, 1, margin)
                                        for size, t in ((h, th), (w, tw)))
    geometry = dict(
        config=config,
        tiles=tiles,
        halo_pixels=halo,
        owner_coefficients=b * held_y * held_x,
        owner_rows=b * visited_y * visited_x)
    if off is None:
        return dict(
            geometry,
            held=4 * b * h * w * kernel**2,
            far=0,
            far_tile_queries=0)
    rows = off.permute(0, 2, 3, 1).reshape(-1, off.shape[1])
    pixel, query, _, _ = corner_entries(rows, shape, (kernel, kernel), (1, 1),
                                        torch.float64)

    def tile_of(row):
        image, at = row // (h * w), row % (h * w)
        return image, at // w // th, at % w // tw

    image, ty, tx = tile_of(query)
    reach = (kernel - 1) // 2 + margin
    py = pixel % (h * w) // w - (ty * th - reach)
    px = pixel % (h * w) % w - (tx * tw - reach)
    held = ((py >= 0) & (py < config['HALO_H']) & (px >= 0) &
            (px < config['HALO_W']))
    far_tiles = {
        tuple(t)
        for t in torch.stack([image, ty, tx], 1)[~held].tolist()
    }
    all_rows = torch.arange(b * h * w)
    queries = torch.stack(tile_of(all_rows), 1).tolist()
    return dict(
        geometry,
        held=int(held.sum()),
        far=int((~held).sum()),
        far_tile_queries=sum(tuple(t) in far_tiles for t in queries))


def halo_closed_form(n, geometry, cq, c, k, data):
    """(kernel, access) -> (elements, bytes) of the halo forward, finite
    inputs: ``n`` queries, ``geometry`` from :func:`halo_geometry`. The
    query tile is read once per halo chunk of the score product (and once
    for its finiteness), the attention tile once per value chunk after
    adding each corner held to it (a load and a store); p_k, the offsets
    and the far corners' rows as the gather forward reads them."""
    config = geometry['config']
    halo_pad, block_h = config['HALO_PAD'], config['BLOCK_H']
    value_chunks = -(-c // config['BLOCK_C'])
    held, far = geometry['held'], geometry['far']
    far_queries, halo = geometry['far_tile_queries'], geometry['halo_pixels']
    forms = {
        ('snl_halo_forward_kernel', 'load'): [
            (n * cq * (halo_pad // block_h + 1), data),  # query tiles
            (halo * (cq + c), data),  # the halo's keys and values
            (held, 4),  # scores of the corners held
            (2 * far * cq, data),  # far corners: query and key rows
            (4 * n * k, 4),  # offsets (logits, weights)
            (2 * n * k, 4),  # logits (softmax), logits (p_k)
            (n * halo_pad * value_chunks, 4),  # the attention tile
            # tiles with a far corner: offsets and p_k per value chunk
            (3 * k * far_queries * value_chunks, 4),
            (far * c, data)  # far corners' value rows
        ],
        # scores, logits and p_k, the log-sum-exp, the output; the
        # attention tile's entries, loaded and stored once per corner held
        ('snl_halo_forward_kernel', 'store'): [(n * halo_pad, 4),
                                               (2 * n * k + n, 4),
                                               (n * c, data), (held, 4)],
    }
    forms['snl_halo_forward_kernel', 'load'].append((held, 4))
    return _totals(forms)


def halo_backward_forms(n, geometry, cq, c, k, data):
    """(kernel, access) -> [(elements, bytes an element)] of the ``halo``
    backward's three kernels, finite inputs.

    The points kernel reads its query (grad_out) tile once per block of
    halo pixels of the score products, the halo's key and value rows
    once, each tile row once more for its finiteness, the offsets and the
    score entries of the corners held per point, the far corners' rows as
    the halo forward does, and the pass-1b buffers as the gather backward
    does; it stores the two [64, halo] score tiles and the per-point
    terms. The gradients kernel reads the offsets, p_k and the logit
    gradients once to fill the two [64, halo] coefficient tiles (a load
    and a store each per corner held); the tile's query and grad_out rows
    once, which it stores again with non-finite entries 0 (tiles with a
    far corner read the offsets and coefficients again per chunk and add
    each far corner with one atomic per channel); for the query gradient,
    as the halo forward's output: the G tile once per chunk, the halo's
    key rows once, the far corners' key rows gathered; and a count per
    tile. The key and value kernel, per 8x8 tile of pixels and 64
    channels, reads the coefficients of its pixels in each query tile's
    halo and the rows of every query tile that can reach it, then the far
    corners' sums, and stores each gradient row once."""
    from mmseg_ssanet.ops.backends.triton_launch import (halo_backward_launch,
                                                         halo_key_value_launch)
    halo_pad, tiles = geometry['config']['HALO_PAD'], geometry['tiles']
    held, far = geometry['held'], geometry['far']
    far_queries, halo = geometry['far_tile_queries'], geometry['halo_pixels']
    points = halo_backward_launch('points')
    score_blocks = halo_pad // points['BLOCK_H']
    block = halo_backward_launch('gradients')
    # offsets, p_k and logit gradients: the tiles, each entry held loaded
    loads = [(4 * n * k, 4), (2 * held, 4)]
    owner_loads = []
    for width, name in ((cq, 'BLOCK_CQ'), (c, 'BLOCK_C')):
        width_chunks = -(-width // block[name])
        loads += [
            (n * width, data),  # the rows: far corners, cleaned copy
            (3 * k * far_queries * width_chunks, 4)  # far: offsets, coef.
        ]
        blocks = -(-width // halo_key_value_launch(width, None)['BLOCK'])
        owner_loads += [
            (geometry['owner_coefficients'] * blocks, 4),
            (geometry['owner_rows'] * width, data),
            (n * width, 4)  # the far corners' sums
        ]
    cq_chunks = -(-cq // block['BLOCK_DQ'])
    loads += [
        (n * halo_pad * cq_chunks, 4),  # G, for the query gradient
        (halo * cq + far * cq, data),  # key rows: the halo's, far corners'
        (3 * k * far_queries * cq_chunks, 4)  # far: offsets, g_k
    ]
    return {
        ('snl_halo_points_kernel', 'load'): [
            (n, 4),  # the log-sum-exp
            (n * (cq + c) * (score_blocks + 1), data),  # query, grad_out
            (halo * (cq + c), data),  # the halo's keys and values
            (2 * n * k, 4),  # offsets
            (2 * held, 4),  # score entries of the corners held
            (2 * far * (cq + c), data),  # far corners' rows, both sides
            (6 * n * k, 4)  # pass 1b: p_k, <go, v_k>, offset terms
        ],
        # the score tiles; per point p_k, <go, v_k> and four offset terms;
        # pass 1b: the logit gradient and the offset gradient
        ('snl_halo_points_kernel', 'store'): [(2 * n * halo_pad, 4),
                                              (9 * n * k, 4)],
        ('snl_halo_gradients_kernel', 'load'):
        loads,
        # the coefficient tiles' entries, the cleaned rows, the query
        # gradient, the count of far corners and non-finite entries
        ('snl_halo_gradients_kernel', 'store'): [(2 * held, 4),
                                                 (n * (cq + c), data),
                                                 (n * cq, 4), (tiles, 4)],
        ('snl_halo_gradients_kernel', 'atomic'): [(far * (cq + c), 4)],
        ('snl_halo_key_value_kernel', 'load'):
        owner_loads,
        ('snl_halo_key_value_kernel', 'store'): [(n * (cq + c), 4)],
    }


def measure(args, counter):
    import torch

    from mmseg_ssanet.ops.backends.triton import BACKWARD_ENV, FORWARD_ENV
    from mmseg_ssanet.ops.backends.triton_launch import LAUNCH_TABLE_ENV
    b, (h, w), cq, c, kernel = args.batch, args.size, args.cq, args.c, 3
    g = torch.Generator().manual_seed(0)
    q, k = (torch.randn(b, cq, h, w, generator=g) for _ in range(2))
    v = torch.randn(b, c, h, w, generator=g)
    # trained-like offsets of a few pixels; some corners leave the map
    o = torch.randn(b, 2 * kernel**2, h, w, generator=g) * 2
    inside = corners_inside(o, (b, h, w), kernel)
    rows = []
    os.environ[FORWARD_ENV] = 'gather'
    for variant in GATHER_COUNTED:
        os.environ[BACKWARD_ENV] = variant
        counted = _count(counter, (q, k, v, o), kernel)
        want = closed_form(b * h * w, inside, cq, c, kernel**2, 4, variant)
        _check(variant, counted, want)
        rows += _rows(variant, counted)
    # the halo forward and backward on a map larger than one halo, with
    # offsets that reach beyond it: all their paths, in the GPU's tiles
    b, (h, w) = 1, HALO_COUNTED
    q, k = (torch.randn(b, cq, h, w, generator=g) for _ in range(2))
    v = torch.randn(b, c, h, w, generator=g)
    o = torch.randn(b, 2 * kernel**2, h, w, generator=g) * 2
    halo = {FORWARD_ENV: 'halo', BACKWARD_ENV: 'halo', LAUNCH_TABLE_ENV: 'gpu'}
    os.environ.update(halo)
    counted = _count(counter, (q, k, v, o), kernel)
    for env in halo:
        os.environ.pop(env)
    geometry = halo_geometry((b, h, w), kernel, cq, c, o)
    if not geometry['far']:
        sys.exit('error: no corner beyond the halo in the counted run')
    n, inside = b * h * w, geometry['held'] + geometry['far']
    forward = halo_closed_form(n, geometry, cq, c, kernel**2, 4)
    backward = _backward_only(
        closed_form(n, inside, cq, c, kernel**2, 4, 'halo', geometry))
    counted_forward = {
        key: form
        for key, form in counted.items() if key in forward
    }
    counted_backward = {
        key: form
        for key, form in counted.items() if key not in forward
    }
    _check('halo forward', counted_forward, forward)
    _check('halo backward', counted_backward, backward)
    print(f'({geometry["far"]} corners beyond the halo)')
    return rows + _rows('halo forward', counted_forward) + _rows(
        'halo', counted_backward)


def _backward_only(form):
    """A closed form without the gather forward's kernel."""
    return {
        key: counts
        for key, counts in form.items() if key[0] != 'snl_forward_kernel'
    }


def _count(counter, inputs, kernel):
    """(kernel, access) -> (elements, bytes) of one forward and backward."""
    import torch

    from mmseg_ssanet.ops import sparse_nonlocal_attention as snl
    counter.counts.clear()
    xs = [x.clone().requires_grad_() for x in inputs]
    out = snl(*xs, kernel, backend='triton')
    torch.autograd.grad(out.sum(), xs)
    return {key: tuple(v) for key, v in counter.counts.items()}


def _check(name, counted, want):
    if counted != want:
        sys.exit(f'error: {name}: counted (elements, bytes) {counted}, the '
                 f'closed form says {want}')
    print(f'{name}: every kernel\'s loads, stores and atomic updates as the '
          'closed form says')


def _rows(variant, counted):
    return [
        dict(
            variant=variant,
            kernel=kernel_name,
            access=access,
            elements=n,
            bytes=nbytes)
        for (kernel_name, access), (n, nbytes) in counted.items()
    ]


def paper_shapes(points=81):
    """The closed form at the configs' shapes, every corner inside the map
    and its tile's halo: global atomic updates of each backward, and the
    MB each backward's and each forward's kernels move (bf16)."""
    rows = []
    for name, cq, c in CHANNELS:
        for map_name, b, h, w in MAPS:
            n = b * h * w
            geometry = halo_geometry((b, h, w), round(points**0.5), cq, c)
            row = dict(channels=name, map=map_name)
            for variant in VARIANTS:
                form = closed_form(n, 4 * n * points, cq, c, points, 2,
                                   variant, geometry)
                backward = _backward_only(form)
                row[variant] = sum(
                    elements
                    for (_, access), (elements, _) in backward.items()
                    if access == 'atomic')
                row[f'{variant}_mb'] = sum(
                    nbytes for _, nbytes in backward.values()) / 2**20
            row['gather_forward_mb'] = sum(
                nbytes for (kernel, _), (_, nbytes) in form.items()
                if kernel == 'snl_forward_kernel') / 2**20
            halo = halo_closed_form(n, geometry, cq, c, points, 2)
            row['halo_forward_mb'] = sum(
                nbytes for _, nbytes in halo.values()) / 2**20
            rows.append(row)
    return rows


def main(argv=None):
    from mmseg_ssanet.benchmark.tables import markdown_table, write_outputs
    from mmseg_ssanet.utils.argument_types import image_size
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--size',
        type=image_size,
        default=(5, 7),
        help='HxW of the counted run (default 5x7)')
    parser.add_argument(
        '--batch', type=int, default=2, help='images (default 2)')
    parser.add_argument('--cq', type=int, default=6, help='query channels')
    parser.add_argument('--c', type=int, default=40, help='value channels')
    parser.add_argument('--out', help='folder for traffic.md and .json')
    args = parser.parse_args(argv)
    counter = Counter()
    counter.install()
    counted = measure(args, counter)
    paper = paper_shapes()
    text = (
        f'Counted at {args.batch}x{args.size[0]}x{args.size[1]}, Cq '
        f'{args.cq}, C {args.c}, K 9 (interpreter):\n\n' + markdown_table(
            counted, ['variant', 'kernel', 'access', 'elements', 'bytes']) +
        '\nAt the paper\'s shapes, K 81, bf16 inputs (closed form, every '
        'corner inside the map and, for the halo forward, its tile\'s '
        'halo):\n\n' +
        markdown_table(paper, ['channels', 'map'] + [
            (v, f'{v}: atomic updates') for v in VARIANTS
        ] + [(f'{v}_mb', f'{v}: MB moved', '.0f') for v in VARIANTS] +
                       [(f'{v}_forward_mb', f'{v} forward: MB moved', '.0f')
                        for v in ('gather', 'halo')]))
    print(text)
    if args.out:
        write_outputs(args.out, {
            'traffic.md': text,
            'traffic.json': dict(counted=counted, paper=paper)
        })
    return 0


if __name__ == '__main__':
    sys.exit(main())
