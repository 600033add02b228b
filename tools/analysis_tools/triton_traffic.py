"""Atomic updates and global memory traffic of the Triton SNL kernels,
counted under Triton's interpreter with no GPU.

Runs the ``triton`` backend's forward and backward on CPU tensors under
``TRITON_INTERPRET=1``, once per backward variant (``SSANET_TRITON_BACKWARD``:
``atomic``, ``sorted``), and counts per kernel the elements that every
``tl.load``, ``tl.store`` and ``tl.atomic_add`` touches (lanes masked off
excluded) and their bytes. The atomic count must equal its closed form:
Cq + C updates per (query, point, corner) whose corner lies inside the map
(``sorted``: none). The closed form then gives the paper's shapes, where
every corner inside the map is the upper bound: 4 N K (Cq + C) updates.
(The ``sorted`` variant's sort and entry gathers run as torch operations
and are not counted here.)

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


def atomics_closed_form(off, shape, kernel, cq, c, variant):
    """Cq + C updates per (query, point, corner) inside the map."""
    if variant == 'sorted':
        return 0
    import torch

    from mmseg_ssanet.ops.backends.triton import _corner_entries
    rows = off.permute(0, 2, 3, 1).reshape(-1, off.shape[1])
    pixel = _corner_entries(rows, shape, (kernel, kernel), (1, 1),
                            torch.float64)[0]
    return pixel.numel() * (cq + c)


def measure(args, counter):
    import torch

    from mmseg_ssanet.ops import sparse_nonlocal_attention as snl
    b, (h, w), cq, c, kernel = args.batch, args.size, args.cq, args.c, 3
    g = torch.Generator().manual_seed(0)
    q, k = (torch.randn(b, cq, h, w, generator=g) for _ in range(2))
    v = torch.randn(b, c, h, w, generator=g)
    # trained-like offsets of a few pixels; some corners leave the map
    o = torch.randn(b, 2 * kernel**2, h, w, generator=g) * 2
    rows = []
    for variant in VARIANTS:
        os.environ['SSANET_TRITON_BACKWARD'] = variant
        counter.counts.clear()
        xs = [x.clone().requires_grad_() for x in (q, k, v, o)]
        out = snl(*xs, kernel, backend='triton')
        torch.autograd.grad(out.sum(), xs)
        want = atomics_closed_form(o, (b, h, w), kernel, cq, c, variant)
        counted = sum(
            n for (_, access), (n, _) in counter.counts.items()
            if access == 'atomic')
        rows += [
            dict(
                variant=variant,
                kernel=kernel_name,
                access=access,
                elements=n,
                bytes=nbytes)
            for (kernel_name, access), (n, nbytes) in counter.counts.items()
        ]
        if counted != want:
            sys.exit(f'error: {variant}: {counted} atomic updates counted, '
                     f'the closed form says {want}')
        print(f'{variant}: {counted} atomic updates, as the closed form '
              'says')
    return rows


def paper_shapes(points=81):
    return [
        dict(
            channels=name,
            map=map_name,
            **{
                variant:
                0 if variant == 'sorted' else 4 * b * h * w * points * (cq + c)
                for variant in VARIANTS
            }) for name, cq, c in CHANNELS for map_name, b, h, w in MAPS
    ]


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
        '\nGlobal atomic updates at the paper\'s shapes, K 81 (closed form, '
        'every corner inside the map):\n\n' +
        markdown_table(paper, ['channels', 'map', *VARIANTS]))
    print(text)
    if args.out:
        write_outputs(args.out, {
            'traffic.md': text,
            'traffic.json': dict(counted=counted, paper=paper)
        })
    return 0


if __name__ == '__main__':
    sys.exit(main())
