"""Time and memory of the SNL block against its floor and dense non-local.

Measures on this machine, for each feature size, channel count and batch:
``snl`` (:class:`SparseNonLocal2d`, K=81, the device's default backend: the
fused ``cpp`` kernel on CPU); ``snl_csr``, ``snl_reference`` (the same block
on the pure-PyTorch backends; ``--methods`` adds the slow reference);
``floor`` (the block's own 1x1 convs with nothing between them, theta, phi,
g and offset as one GEMM, then gamma: what a perfect SNL block would
cost); ``floor_separate`` (those convs one by one, as the block runs them);
``nonlocal2d`` (mmcv's ``NonLocal2d``, embedded Gaussian, scaled, which
mmseg's ``NLHead`` uses); ``dense_sdpa`` (that block on
``F.scaled_dot_product_attention``).

Offsets are trained-like (a standard deviation of ``--offset-std`` pixels).
Times: one worker process per (size, channels, batch) times every method
in interleaved rounds (:mod:`mmseg_ssanet.benchmark.timing`), the median
of ``--repeats``. Peak memory: the growth of the resident set during one
forward+backward, each method in a worker of its own. Passes estimated to
need more than ``--max-gb`` are skipped, and said so.

Example::

    python tools/analysis_tools/benchmark_snl.py --out work_dirs/benchmark_snl

writes ``results.json``, ``results.md`` (every row, then the ratios the
fused kernel is judged by: docs/benchmarks.md) and ``time_vs_n.png``.
"""
import argparse
import json
import os.path as osp
import sys
import time

import torch

# the repo root: the tool runs from a plain checkout
sys.path.insert(0, osp.abspath(osp.join(__file__, *['..'] * 3)))
from mmseg_ssanet.benchmark import (ConvFloor, DenseNonLocal, WorkerError,
                                    interleaved, markdown_table, medians_ms,
                                    passes, peak_memory_mb, print_result,
                                    run_worker, sdpa_attention, write_outputs)

METHODS = ('snl', 'snl_csr', 'snl_reference', 'floor', 'floor_separate',
           'nonlocal2d', 'dense_sdpa')
DEFAULT_METHODS = [m for m in METHODS if m != 'snl_reference']
SIZES = {
    '49x49': 49 * 49,
    '64x128': 64 * 128,
    '97x97': 97**2,
    '128x256': 128 * 256
}
PASSES = ('forward', 'forward_backward')


def build(method, channels, num_samples, offset_std):
    from mmcv.cnn import NonLocal2d

    from mmseg_ssanet.models import SparseNonLocal2d
    if method == 'nonlocal2d':
        return NonLocal2d(
            channels, reduction=2, use_scale=True, mode='embedded_gaussian')
    if method == 'dense_sdpa':
        return DenseNonLocal(channels, sdpa_attention)
    backend = dict(snl_csr='csr', snl_reference='reference').get(method)
    block = SparseNonLocal2d(
        channels, num_samples=num_samples, backend=backend)
    # Trained offsets are not zero: a few pixels (input ~ N(0, 1)).
    torch.nn.init.normal_(
        block.offset.conv.weight, std=offset_std / channels**0.5)
    if method.startswith('floor'):
        convs = [
            m.conv for m in (block.theta, block.phi, block.g, block.offset)
        ]
        return ConvFloor(convs, block.gamma, fused=method == 'floor')
    return block


def estimate_gb(method, n, c, b, k, backward):
    """Rough upper bound of a pass's memory, to skip what cannot fit."""
    extra = {  # the fused kernel and the floor keep nothing of size N x K
        'nonlocal2d': b * n * n * 4 * (4 if backward else 2),
        'snl_reference': b * n * k * (c + c // 2) * 4 * (3 if backward else 1),
        'snl_csr': b * n * 4 * k * 8 * (6 if backward else 3),
        # O(N) forward; its CPU backward measured ~3 N x N
        'dense_sdpa': b * n * n * 4 * 3 if backward else 0
    }.get(method, 0)
    return (8 * b * n * c * 4 + extra) / 2**30  # + inputs, outputs


def worker(kind, spec):
    """``time``: every method of one (size, channels, batch) in interleaved
    rounds; ``memory``: one method's forward+backward peak."""
    torch.manual_seed(0)
    h, w = map(int, spec['size'].split('x'))
    x = torch.randn(spec['batch'], spec['channels'], h, w)
    methods = spec['methods'] if kind == 'time' else [[spec['method'], 1]]
    blocks = {
        m:
        build(m, spec['channels'], spec['num_samples'],
              spec['offset_std']).train()
        for m, _ in methods
    }
    if kind == 'memory':
        fn = passes(blocks[spec['method']], x)['forward_backward']
        fn()  # the allocator is then tuned for it
        return print_result(dict(peak_mem_mb=peak_memory_mb(fn)))
    results = {m: {} for m in blocks}
    for p in PASSES:
        fns = {
            m: passes(blocks[m], x)[p]
            for m, bw in methods if bw or p == PASSES[0]
        }
        times = interleaved(fns, spec['repeats'], budget_s=spec['budget_s'])
        for m, ms in medians_ms(times).items():
            results[m].update({f'{p}_ms': ms, f'{p}_runs': len(times[m])})
    print_result(results)


def run_all(args):
    rows = []
    for size in args.sizes:
        for c in args.channels:
            for b in args.batches:
                rows += run_group(args, size, c, b)
    for r in rows:  # ratios to nonlocal2d of the same size, C, B
        ref = next((o for o in rows if o['method'] == 'nonlocal2d' and all(
            o[k] == r[k] for k in ('size_name', 'channels', 'batch'))), {})
        for key in ('forward_ms', 'forward_backward_ms', 'peak_mem_mb'):
            if ref.get(key) and key in r:
                r[key.rsplit('_', 1)[0] + '_ratio'] = r[key] / ref[key]
    return rows


def run_group(args, size, c, b):
    n, k = SIZES[size], args.num_samples
    spec = dict(
        size=size,
        channels=c,
        batch=b,
        num_samples=k,
        repeats=args.repeats,
        budget_s=args.budget_s,
        offset_std=args.offset_std)
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


def ratios(rows):
    """The ratios the fused kernel is judged by, per channels and batch
    (the goals they are judged against live in docs/benchmarks.md)."""
    table = []
    for c, b in sorted({(r['channels'], r['batch']) for r in rows}):
        got = {
            (r['size_name'], r['method']): r
            for r in rows if r['channels'] == c and r['batch'] == b
        }
        for what, key, num, den in RATIOS:
            pairs = {s: (s, s) for s in SIZES if any(s == g for g, _ in got)}
            if what.endswith('/ 64x128'):  # the growth with N: one value
                pairs = {'': ('128x256', '64x128')}
            values = {}
            for name, (a, d) in pairs.items():
                a, d = (got.get((s, m), {}).get(key)
                        for s, m in ((a, num), (d, den)))
                values[name] = a / d if a and d else None
            table.append(dict(channels=c, batch=b, what=what, values=values))
    return table


def _forward_cell(row):  # a skipped or failed method says why here
    return row.get('skipped') or row.get('error') or (format(
        row['forward_ms'], '.1f') if 'forward_ms' in row else '-')


COLUMNS = [
    ('size_name', 'size'),
    ('n', 'N'),
    ('channels', 'C'),
    ('batch', 'B'),
    'method',
    ('forward_ms', 'forward ms', _forward_cell),
    ('forward_ratio', 'ratio', '.2f'),
    ('forward_backward_ms', 'fwd+bwd ms', '.1f'),
    ('forward_backward_ratio', 'ratio', '.2f'),
    ('peak_mem_mb', 'peak MB fwd+bwd', '.0f'),
    ('peak_mem_ratio', 'ratio', '.2f'),
]


def markdown(rows, table):
    shown = []
    for g in table:
        values = [
            f'{s + " " if s else ""}{v:.2f}' for s, v in g['values'].items()
            if v is not None
        ]
        if values:
            shown.append(dict(g, values=', '.join(values)))
    return markdown_table(rows, COLUMNS) + '\n' + markdown_table(
        shown, [('channels', 'C'), ('batch', 'B'),
                ('what', 'ratio'), 'values'])


def plot(rows, path, channels, batch):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 5))
    for m in METHODS:
        for key, style, name in (('forward_ms', '-o', 'fwd'),
                                 ('forward_backward_ms', '--s', 'fwd+bwd')):
            pts = sorted((r['n'], r[key]) for r in rows
                         if r['method'] == m and key in r
                         and r['channels'] == channels and r['batch'] == batch)
            if pts:
                ax.plot(*zip(*pts), style, label=f'{m} {name}')
    ax.set(
        xscale='log',
        yscale='log',
        xlabel='N = H x W (feature pixels)',
        ylabel='time (ms, median)')
    ax.set_title(
        f'SNL block vs its 1x1-conv floor and dense non-local, '
        f'C={channels}, batch {batch}',
        fontsize=10)
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add = parser.add_argument
    add('--worker', nargs=2, help=argparse.SUPPRESS)
    add('--out',
        default='work_dirs/benchmark_snl',
        help='folder for the tables, JSON and plot (default %(default)s)')
    add('--sizes',
        nargs='+',
        default=list(SIZES),
        choices=list(SIZES),
        help='feature map sizes (default: all)')
    add('--channels',
        nargs='+',
        type=int,
        default=[512],
        help='block input channels (default 512)')
    add('--batches',
        nargs='+',
        type=int,
        default=[1, 2],
        help='batch sizes (default 1 2)')
    add('--methods',
        nargs='+',
        default=DEFAULT_METHODS,
        choices=METHODS,
        help=f'what to time (default: {" ".join(DEFAULT_METHODS)})')
    add('--num-samples',
        type=int,
        default=81,
        help='SNL points K (default %(default)s)')
    add('--offset-std',
        type=float,
        default=2.0,
        help='standard deviation of the offsets, pixels')
    add('--repeats',
        type=int,
        default=5,
        help='timed rounds (median reported)')
    add('--budget-s',
        type=float,
        default=3.0,
        help='fewer rounds for a method this slow a pass')
    add('--max-gb',
        type=float,
        default=6.0,
        help='skip passes estimated to need more memory')
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker[0], json.loads(args.worker[1]))
    start = time.time()
    rows = run_all(args)
    table = ratios(rows)
    text = markdown(rows, table)
    command = ' '.join(['python', osp.relpath(sys.argv[0])] + sys.argv[1:])
    write_outputs(
        args.out, {
            'results.json':
            dict(
                command=command,
                threads=torch.get_num_threads(),
                minutes=(time.time() - start) / 60,
                rows=rows,
                ratios=table),
            'results.md':
            text
        })
    plot(rows, osp.join(args.out, 'time_vs_n.png'), args.channels[0],
         args.batches[0])
    print(text)
    print(f'{(time.time() - start) / 60:.1f} min; written: {args.out}/'
          f'results.json, results.md, time_vs_n.png')


if __name__ == '__main__':
    main()
