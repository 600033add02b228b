"""Time and memory of the SNL block against its floor and dense non-local.

For each feature size, channel count and batch, one worker process times
the blocks of :mod:`mmseg_ssanet.benchmark.blocks` (trained-like offsets of
``--offset-std`` pixels) in interleaved rounds, the median of
``--repeats``; each block's forward+backward peak memory (the growth of the
resident set) is measured in a worker of its own. Passes estimated to need
more than ``--max-gb`` are skipped, and said so.

Example::

    python tools/analysis_tools/benchmark_snl.py --out work_dirs/benchmark_snl

writes ``results.json``, ``results.md`` (every row, then the ratios the
fused kernel is judged by: docs/benchmarks.md) and ``time_vs_n.png``.
"""
import argparse
import itertools
import json
import os.path as osp
import sys
import time

import torch

# the repo root: the tool runs from a plain checkout
sys.path.insert(0, osp.abspath(osp.join(__file__, *['..'] * 3)))
from mmseg_ssanet.benchmark import (BLOCKS, MAP_SIZES, WorkerError,
                                    block_ratios, build_block, estimate_gb,
                                    markdown_table, passes, peak_memory_mb,
                                    print_result, run_worker, save_lines,
                                    time_passes, write_outputs)

DEFAULT_METHODS = [m for m in BLOCKS if m != 'snl_reference']
PASSES = ('forward', 'forward_backward')


def worker(kind, spec):
    """``time``: every method of one (size, channels, batch) in interleaved
    rounds; ``memory``: one method's forward+backward peak."""
    torch.manual_seed(0)
    h, w = map(int, spec['size'].split('x'))
    x = torch.randn(spec['batch'], spec['channels'], h, w)
    methods = spec['methods'] if kind == 'time' else [[spec['method'], 1]]
    blocks = {
        m:
        build_block(m, spec['channels'], spec['num_samples'],
                    spec['offset_std']).train()
        for m, _ in methods
    }
    if kind == 'memory':
        fn, = passes(blocks[spec['method']], x, ['forward_backward']).values()
        fn()  # the allocator is then tuned for it
        return print_result(dict(peak_mem_mb=peak_memory_mb(fn)))
    print_result(
        time_passes(
            {
                m: passes(blocks[m], x, PASSES if backward else PASSES[:1])
                for m, backward in methods
            },
            spec['repeats'],
            budget_s=spec['budget_s']))


def run_group(args, size, c, b):
    n, k = MAP_SIZES[size], args.num_samples
    spec = dict(size=size, channels=c, batch=b, num_samples=k)
    spec.update(
        {a: vars(args)[a]
         for a in ('repeats', 'budget_s', 'offset_std')})
    rows, runnable = {}, []
    for m in args.methods:
        rows[m] = dict(method=m, size_name=size, n=n, channels=c, batch=b)
        fwd, bwd = (estimate_gb(m, n, c, b, k, bw) for bw in (False, True))
        if fwd > args.max_gb:
            rows[m]['skipped'] = f'estimated {fwd:.0f} GB > --max-gb'
            continue
        if bwd > args.max_gb:
            rows[m]['skipped_backward'] = f'estimated {bwd:.0f} GB > --max-gb'
        runnable.append((m, bwd <= args.max_gb))
    try:
        (found, ), _ = run_worker(__file__, 'time',
                                  dict(spec, methods=runnable))
    except WorkerError as err:
        for m, _ in runnable:
            rows[m]['error'] = str(err)
        return list(rows.values())
    for m, backward in runnable:
        rows[m].update(found[m])
        try:
            if backward:
                (mem, ), _ = run_worker(__file__, 'memory',
                                        dict(spec, method=m))
                rows[m].update(mem)
        except WorkerError as err:
            rows[m]['error'] = str(err)
    return list(rows.values())


def _forward_cell(row):  # a skipped or failed method says why here
    return row.get('skipped') or row.get('error') or (format(
        row['forward_ms'], '.1f') if 'forward_ms' in row else '-')


COLUMNS = [('size_name', 'size'), ('n', 'N'),
           ('channels', 'C'), ('batch', 'B'), 'method',
           ('forward_ms', 'forward ms', _forward_cell),
           ('forward_ratio', 'ratio', '.2f'),
           ('forward_backward_ms', 'fwd+bwd ms', '.1f'),
           ('forward_backward_ratio', 'ratio', '.2f'),
           ('peak_mem_mb', 'peak MB fwd+bwd', '.0f'),
           ('peak_mem_ratio', 'ratio', '.2f')]


def markdown(rows, table):
    return markdown_table(rows, COLUMNS) + '\n' + markdown_table(
        table, [('channels', 'C'), ('batch', 'B'), ('what', 'ratio'),
                ('values', 'values', _values)])


def _values(row):
    return ', '.join(f'{s + " " if s else ""}{v:.2f}'
                     for s, v in row['values'].items() if v is not None)


def plot(rows, path, channels, batch):
    mine = [
        r for r in rows if (r['channels'], r['batch']) == (channels, batch)
    ]
    save_lines(
        {
            f'{m} {name}':
            (style, [(r['n'], r[key])
                     for r in mine if r['method'] == m and key in r])
            for m in BLOCKS
            for key, style, name in (('forward_ms', '-o', 'fwd'),
                                     ('forward_backward_ms', '--s', 'fwd+bwd'))
        }, path, f'SNL block vs its 1x1-conv floor and dense non-local, '
        f'C={channels}, batch {batch}', 'N = H x W (feature pixels)',
        'time (ms, median)')


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add('--worker', nargs=2, help=argparse.SUPPRESS)
    add('--out', default='work_dirs/benchmark_snl', help='output folder')
    add('--sizes',
        nargs='+',
        default=list(MAP_SIZES),
        choices=MAP_SIZES,
        metavar='HxW',
        help='of %(choices)s')
    add('--channels', nargs='+', type=int, default=[512], help='block input')
    add('--batches', nargs='+', type=int, default=[1, 2], help='batch sizes')
    add('--methods',
        nargs='+',
        default=DEFAULT_METHODS,
        choices=BLOCKS,
        metavar='NAME',
        help='of %(choices)s')
    add('--num-samples', type=int, default=81, help='SNL points K')
    add('--offset-std', type=float, default=2.0, help='offsets, pixels')
    add('--repeats', type=int, default=5, help='timed rounds (the median)')
    add('--budget-s', type=float, default=3.0, help='fewer rounds if slower')
    add('--max-gb', type=float, default=6.0, help='skip passes needing more')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args.worker[0], json.loads(args.worker[1]))
    start = time.time()
    rows = [
        row
        for group in itertools.product(args.sizes, args.channels, args.batches)
        for row in run_group(args, *group)
    ]
    table = [r for r in block_ratios(rows) if _values(r)]
    text = markdown(rows, table)
    result = dict(
        command=' '.join(['python', osp.relpath(sys.argv[0])] + sys.argv[1:]),
        threads=torch.get_num_threads(),
        minutes=(time.time() - start) / 60)
    result.update(rows=rows, ratios=table)
    write_outputs(args.out, {'results.json': result, 'results.md': text})
    plot(rows, osp.join(args.out, 'time_vs_n.png'), args.channels[0],
         args.batches[0])
    print(text)
    print(f'{(time.time() - start) / 60:.1f} min; written: {args.out}/'
          f'results.json, results.md, time_vs_n.png')


if __name__ == '__main__':
    main()
