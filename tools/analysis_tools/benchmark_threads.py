"""Thread scaling of the fused C++ SNL kernel against its 1x1-conv floor.

What a CPU-inference user needs to know: how the SNL block's time falls
with cores, and how far it stays from its floor (the block's own 1x1
convolutions with nothing between them, what a perfect SNL block would
cost). torch only (no mmcv): the block is
:class:`~mmseg_ssanet.benchmark.PlainSNLBlock` (plain ``nn.Conv2d`` layers
of ``SparseNonLocal2d``'s shapes) on the ``cpp`` backend, the floor
:class:`~mmseg_ssanet.benchmark.ConvFloor` (theta, phi, g and the offsets
as one GEMM, then gamma).

For each (size, batch), in one process: every thread count and pass is
timed in interleaved rounds (:func:`mmseg_ssanet.benchmark.interleaved`),
the median of ``--repeats`` rounds reported. Rows are written as they finish,
so a run stopped by a time limit keeps what it measured.

Example (the default grid: 64x128 and 128x256, C=512, K=81, B=1 and 8,
1-16 threads; minutes on 16 cores)::

    python tools/analysis_tools/benchmark_threads.py --out work_dirs/threads

writes ``threads.md`` and ``threads.json`` there. Runs from a plain
checkout (the repo root is put on ``sys.path``); set
``SSANET_CPP_EXTENSION`` to time another build of the kernel.
"""
import argparse
import json
import os
import os.path as osp
import platform
import sys
import time

import torch

# the repo root: this tool runs from a plain checkout (a bare GPU machine)
sys.path.insert(0, osp.abspath(osp.join(__file__, *['..'] * 3)))
from mmseg_ssanet.benchmark import (ConvFloor, PlainSNLBlock, interleaved,
                                    markdown_table, medians_ms, passes,
                                    write_outputs)
from mmseg_ssanet.ops.backends import cpp
from mmseg_ssanet.utils.argument_types import image_size


def measure(size, batch, args, on_row):
    """Every (threads, method, pass) of one (size, batch), interleaved;
    ``on_row(row)`` gets each row as its medians are known."""
    torch.manual_seed(0)
    block = PlainSNLBlock(
        args.channels, args.kernel_size, backend='cpp').train()
    floor = ConvFloor(block.projections(), block.gamma).train()
    x = torch.randn(batch, args.channels, *size)
    fns = {
        (t, m, p): fn
        for t in args.threads
        for m, module in (('snl', block), ('floor', floor))
        for p, fn in passes(module, x).items()
    }
    ms = medians_ms(
        interleaved(
            fns,
            args.repeats,
            prepare=lambda key: torch.set_num_threads(key[0])))
    for t in args.threads:
        row = dict(
            size=f'{size[0]}x{size[1]}',
            batch=batch,
            threads=t,
            channels=args.channels,
            k=args.kernel_size[0] * args.kernel_size[1],
            repeats=args.repeats)
        for p in ('forward', 'forward_backward'):
            row[f'snl_{p}_ms'] = ms[t, 'snl', p]
            row[f'floor_{p}_ms'] = ms[t, 'floor', p]
            row[f'snl_over_floor_{p}'] = ms[t, 'snl', p] / ms[t, 'floor', p]
        on_row(row)


def speedups(rows):
    """Each row's SNL speed-up over the fewest threads of its (size,
    batch)."""
    base = {}
    for r in sorted(rows, key=lambda r: r['threads']):
        base.setdefault((r['size'], r['batch']), r)
    for r in rows:
        b = base[r['size'], r['batch']]
        for p in ('forward', 'forward_backward'):
            r[f'snl_{p}_speedup'] = b[f'snl_{p}_ms'] / r[f'snl_{p}_ms']
    return rows


COLUMNS = [
    ('size', 'size'),
    ('batch', 'B'),
    ('threads', 'threads'),
    ('snl_forward_ms', 'SNL fwd ms', '.1f'),
    ('floor_forward_ms', 'floor fwd ms', '.1f'),
    ('snl_over_floor_forward', 'SNL/floor fwd', '.2f'),
    ('snl_forward_speedup', 'SNL fwd speed-up',
     lambda r: f"{r['snl_forward_speedup']:.2f}x"),
    ('snl_forward_backward_ms', 'SNL fwd+bwd ms', '.1f'),
    ('floor_forward_backward_ms', 'floor fwd+bwd ms', '.1f'),
    ('snl_over_floor_forward_backward', 'SNL/floor fwd+bwd', '.2f'),
    ('snl_forward_backward_speedup', 'SNL fwd+bwd speed-up',
     lambda r: f"{r['snl_forward_backward_speedup']:.2f}x"),
]


def markdown(rows, header):
    return '\n'.join(header + ['', markdown_table(rows, COLUMNS)])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--out',
        default='work_dirs/benchmark_threads',
        help='folder for threads.md and threads.json')
    parser.add_argument(
        '--sizes',
        nargs='+',
        type=image_size,
        default=[(64, 128), (128, 256)],
        help='feature map sizes HxW')
    parser.add_argument(
        '--batches', nargs='+', type=int, default=[1, 8], help='batch sizes')
    parser.add_argument(
        '--threads',
        nargs='+',
        type=int,
        default=[1, 2, 4, 8, 16],
        help='thread counts (more than the CPUs are '
        'dropped, and said so)')
    parser.add_argument(
        '--channels',
        type=int,
        default=512,
        help='channels C of the block input')
    parser.add_argument(
        '--kernel-size',
        type=image_size,
        default=(9, 9),
        help='sampling grid kh x kw (9x9: K=81)')
    parser.add_argument(
        '--repeats',
        type=int,
        default=3,
        help='timed rounds (the median is reported)')
    args = parser.parse_args(argv)
    for name in ('batches', 'threads'):
        if any(n <= 0 for n in getattr(args, name)):
            parser.error(f'--{name} must be positive integers')
    if args.repeats <= 0 or args.channels < 2:
        parser.error('--repeats must be positive and --channels at least 2')
    return args


def main(argv=None):
    args = parse_args(argv)
    reason = cpp.unavailable(torch.device('cpu'))
    if reason:
        sys.exit(f'benchmark_threads: {reason}')
    cpus = os.cpu_count() or 1
    dropped = [t for t in args.threads if t > cpus]
    args.threads = [t for t in args.threads if t <= cpus] or [cpus]
    header = [
        '# SNL block (fused C++ kernel) against its 1x1-conv floor, by '
        'threads', '',
        f'Command: `python tools/analysis_tools/benchmark_threads.py '
        f'{" ".join(sys.argv[1:])}`  ',
        f'Machine: {platform.processor() or platform.machine()}, '
        f'{cpus} CPUs; torch {torch.__version__}; kernel variant '
        f'{cpp._C.variant()} (build {cpp._C.isa}); '
        f'{time.strftime("%Y-%m-%d")}  ',
        'Times: median of the rounds, in ms; speed-up over the fewest '
        'threads.' +
        (f' Not run (more threads than CPUs): {dropped}.' if dropped else '')
    ]
    rows = []

    def on_row(row):
        rows.append(row)
        speedups(rows)
        write_outputs(args.out, {
            'threads.json': rows,
            'threads.md': markdown(rows, header)
        })
        print(json.dumps(row), flush=True)

    for batch in sorted(args.batches):
        for size in sorted(args.sizes, key=lambda s: s[0] * s[1]):
            measure(size, batch, args, on_row)
    print(markdown(rows, header))


if __name__ == '__main__':
    main()
