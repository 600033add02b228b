"""Atomic updates and global memory traffic of the Triton SNL kernels,
counted under Triton's interpreter with no GPU.

Runs the ``triton`` backend's forward and backward on CPU tensors under
``TRITON_INTERPRET=1``, once per backward variant (``SSANET_TRITON_BACKWARD``:
``atomic``, ``sorted``), and counts per kernel the elements that every
``tl.load``, ``tl.store`` and ``tl.atomic_add`` touches (lanes masked off
excluded) and their bytes. Every count must equal its closed form
(:func:`closed_form`; atomic updates: Cq + C per (query, point, corner)
whose corner lies inside the map, none for ``sorted``), or the tool fails.
The closed form then gives the paper's shapes, every corner inside the map:
4 N K (Cq + C) atomic updates, and the bytes the backward's kernels
request (gathered corner rows in full: an upper bound on DRAM traffic).
(The ``sorted`` variant's sort and entry gathers run as torch operations
and are not counted.)

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

VARIANTS = ('atomic', 'sorted')
# (name, Cq, C): R101 (Cityscapes, ADE20K, PASCAL Context), MobileNetV2
CHANNELS = (('R101', 256, 512), ('MobileNetV2', 128, 256))
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

    from mmseg_ssanet.ops.backends.triton import _corner_entries
    rows = off.permute(0, 2, 3, 1).reshape(-1, off.shape[1])
    return _corner_entries(rows, shape, (kernel, kernel), (1, 1),
                           torch.float64)[0].numel()


def chunks(width):
    """Channel chunks a program walks (``launch_config``'s: 32 channels,
    fewer as a power of two for narrower rows)."""
    return -(-width // min(32, 1 << max(width - 1, 0).bit_length()))


def closed_form(n, e, cq, c, k, data, variant):
    """(kernel, access) -> (elements, bytes) of a forward and backward.

    ``n`` queries, ``e`` corners inside the map, ``data`` bytes an input
    element (offsets, log-sum-exp and the float32 buffers: 4; int64: 8).
    A program reads the query (or grad_out) chunk again for each point in
    the logit pass, the offsets again for each channel chunk of the later
    passes, and the corner rows once per corner inside the map.
    """
    per_corner = dict(q=(n * k * cq + e * cq, data), off=(2 * n * k, 4))
    forms = {
        ('snl_forward_kernel', 'load'):
        [per_corner['q'], (e * c, data), (2 * n * k * (1 + chunks(c)), 4)],
        ('snl_forward_kernel', 'store'): [(n * c, data), (n, 4)],
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
    }
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
    return {
        key: (sum(m for m, _ in parts), sum(m * size for m, size in parts))
        for key, parts in forms.items()
    }


def measure(args, counter):
    import torch

    from mmseg_ssanet.ops import sparse_nonlocal_attention as snl
    b, (h, w), cq, c, kernel = args.batch, args.size, args.cq, args.c, 3
    g = torch.Generator().manual_seed(0)
    q, k = (torch.randn(b, cq, h, w, generator=g) for _ in range(2))
    v = torch.randn(b, c, h, w, generator=g)
    # trained-like offsets of a few pixels; some corners leave the map
    o = torch.randn(b, 2 * kernel**2, h, w, generator=g) * 2
    inside = corners_inside(o, (b, h, w), kernel)
    rows = []
    for variant in VARIANTS:
        os.environ['SSANET_TRITON_BACKWARD'] = variant
        counter.counts.clear()
        xs = [x.clone().requires_grad_() for x in (q, k, v, o)]
        out = snl(*xs, kernel, backend='triton')
        torch.autograd.grad(out.sum(), xs)
        counted = {key: tuple(v) for key, v in counter.counts.items()}
        want = closed_form(b * h * w, inside, cq, c, kernel**2, 4, variant)
        if counted != want:
            sys.exit(f'error: {variant}: counted (elements, bytes) '
                     f'{counted}, the closed form says {want}')
        print(f'{variant}: every kernel\'s loads, stores and atomic updates '
              'as the closed form says')
        rows += [
            dict(
                variant=variant,
                kernel=kernel_name,
                access=access,
                elements=n,
                bytes=nbytes)
            for (kernel_name, access), (n, nbytes) in counted.items()
        ]
    return rows


def paper_shapes(points=81):
    """The closed form at the configs' shapes, every corner inside the map:
    global atomic updates, and MB the backward's kernels move (bf16)."""
    rows = []
    for name, cq, c in CHANNELS:
        for map_name, b, h, w in MAPS:
            n = b * h * w
            row = dict(channels=name, map=map_name)
            for variant in VARIANTS:
                form = closed_form(n, 4 * n * points, cq, c, points, 2,
                                   variant)
                row[variant] = form.get(('snl_backward_kernel', 'atomic'),
                                        (0, 0))[0]
                row[f'{variant}_mb'] = sum(
                    nbytes for (kernel, _), (_, nbytes) in form.items()
                    if kernel != 'snl_forward_kernel') / 2**20
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
        '\nThe backward at the paper\'s shapes, K 81, bf16 inputs (closed '
        'form, every corner inside the map):\n\n' + markdown_table(
            paper, ['channels', 'map'] + [(v, f'{v}: atomic updates')
                                          for v in VARIANTS] +
            [(f'{v}_mb', f'{v}: MB moved', '.0f') for v in VARIANTS]))
    print(text)
    if args.out:
        write_outputs(args.out, {
            'traffic.md': text,
            'traffic.json': dict(counted=counted, paper=paper)
        })
    return 0


if __name__ == '__main__':
    sys.exit(main())
