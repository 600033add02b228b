"""Time and memory of the SNL block against its floor and dense non-local.

Measures on this machine, for each feature size, channel count and batch:

* ``snl``: :class:`SparseNonLocal2d` (K=81), default backend for the
  device (the fused ``cpp`` kernel on CPU);
* ``snl_csr``, ``snl_reference``: the same block on the pure-PyTorch
  backends (``--methods`` to add them: the reference is slow);
* ``floor``: the block's own 1x1 convolutions with nothing between them
  (theta, phi, g and offset as one GEMM, then gamma): what a perfect SNL
  block would cost;
* ``floor_separate``: the same convs run one by one, as the block runs
  them (to decide whether fusing them pays);
* ``nonlocal2d``: mmcv's ``NonLocal2d`` (embedded Gaussian, scaled), which
  mmseg's ``NLHead`` uses;
* ``dense_sdpa``: that dense non-local on ``F.scaled_dot_product_attention``.

Offsets are trained-like: the offset conv's weights are drawn so that the
offsets have a standard deviation of ``--offset-std`` pixels (2 by
default). Times: one process per (size, channels, batch) builds every
method, warms each up, then times them interleaved, round by round (so a
disturbance hits all alike); the median of ``--repeats`` rounds. Peak
memory: the growth of the peak resident set during one forward+backward,
each method in its own process (see :func:`peak_memory_mb`). Passes whose
estimated memory exceeds ``--max-gb`` are skipped and reported as such.

Example::

    python tools/analysis_tools/benchmark_snl.py --out work_dirs/benchmark_snl

writes ``results.json``, ``results.md`` (every row, then the ratios the
fused kernel is judged by; docs/benchmarks.md reports them against its
goals) and ``time_vs_n.png`` there. The baselines are
``snl_baselines.py``'s, shared with the other benchmarks.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from snl_baselines import ConvFloor, DenseNonLocal
from snl_baselines import passes as passes_of
from snl_baselines import sdpa_attention, timed

METHODS = ('snl', 'snl_csr', 'snl_reference', 'floor', 'floor_separate',
           'nonlocal2d', 'dense_sdpa')
DEFAULT_METHODS = ('snl', 'snl_csr', 'floor', 'floor_separate', 'nonlocal2d',
                   'dense_sdpa')
SIZES = {
    '49x49': (49, 49),
    '64x128': (64, 128),
    '97x97': (97, 97),
    '128x256': (128, 256)
}


def build(method, channels, num_samples, offset_std):
    from mmcv.cnn import NonLocal2d
    from torch import nn

    from mmseg_ssanet.models import SparseNonLocal2d

    def snl_block(backend=None):
        block = SparseNonLocal2d(
            channels, num_samples=num_samples, backend=backend)
        # Trained offsets are not zero: a few pixels (input ~ N(0, 1)).
        nn.init.normal_(
            block.offset.conv.weight, std=offset_std / channels**0.5)
        return block

    if method.startswith('snl'):
        return snl_block({
            'snl': None,
            'snl_csr': 'csr',
            'snl_reference': 'reference'
        }[method])
    if method.startswith('floor'):
        b = snl_block()
        return ConvFloor([m.conv for m in (b.theta, b.phi, b.g, b.offset)],
                         b.gamma,
                         fused=method == 'floor')
    if method == 'nonlocal2d':
        return NonLocal2d(
            channels, reduction=2, use_scale=True, mode='embedded_gaussian')
    return DenseNonLocal(channels, sdpa_attention)


def estimate_gb(method, n, c, b, k, backward):
    """Rough upper bound of a pass's memory, to skip what cannot fit."""
    feats = 8 * b * n * c * 4  # inputs, projections, outputs
    if method == 'nonlocal2d':
        extra = b * n * n * 4 * (4 if backward else 2)
    elif method == 'snl_reference':
        extra = b * n * k * (c + c // 2) * 4 * (3 if backward else 1)
    elif method == 'snl_csr':
        extra = b * n * 4 * k * 8 * (6 if backward else 3)
    elif method in ('snl', 'floor', 'floor_separate'):
        extra = 0  # the fused kernel keeps nothing of size N x K
    else:  # dense_sdpa: O(N) forward; its CPU backward measured ~3 N x N
        extra = b * n * n * 4 * 3 if backward else 0
    return (feats + extra) / 2**30


def _rss_kb(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status')


def peak_memory_mb(fn):
    """Growth of the peak resident set while ``fn`` runs, in MB.

    glibc keeps freed blocks on its heap once its mmap threshold has grown,
    where a new pass's allocations would not show in the resident set: pin
    the threshold (large blocks from mmap, returned on free), give the freed
    heap back, then reset VmHWM to the current RSS and run.
    """
    import ctypes
    import gc
    gc.collect()
    libc = ctypes.CDLL('libc.so.6')
    libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    libc.malloc_trim(0)
    before = _rss_kb('VmRSS')
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM to the current RSS
    fn()
    return (_rss_kb('VmHWM') - before) / 1024


def time_worker(spec):
    """All methods of one (size, channels, batch), interleaved; prints a
    JSON line per method."""
    import torch
    torch.manual_seed(0)
    (h, w), c, b, k = spec['size'], spec['channels'], spec['batch'], \
        spec['num_samples']
    x = torch.randn(b, c, h, w)
    passes = {}
    for method, backward in spec['methods']:
        block = build(method, c, k, spec['offset_std']).train()
        timed_passes = passes_of(block, x)
        passes[method] = (block, timed_passes['forward'],
                          timed_passes['forward_backward'], backward)
    results = {m: {} for m in passes}
    for name, index in (('forward_ms', 1), ('forward_backward_ms', 2)):
        todo = [m for m in passes if index == 1 or passes[m][3]]
        # warm-up (allocator, oneDNN primitives); slow passes repeat less
        rounds = {
            m:
            max(
                1,
                min(spec['repeats'],
                    int(spec['budget_s'] /
                        max(timed(passes[m][index]), 1e-6))))
            for m in todo
        }
        times = {m: [] for m in todo}
        for r in range(max(rounds.values(), default=0)):
            for m in todo:
                if r < rounds[m]:
                    times[m].append(timed(passes[m][index]))
        for m in todo:
            ts = sorted(times[m])
            results[m][name] = 1000 * ts[len(ts) // 2]
            results[m][name.replace('_ms', '_runs')] = len(ts)
    for m, r in results.items():
        print('RESULT ' + json.dumps(dict(method=m, **r)), flush=True)


def memory_worker(spec):
    """Peak memory of one method's forward+backward, in this process."""
    import torch
    torch.manual_seed(0)
    (h, w), c, b = spec['size'], spec['channels'], spec['batch']
    block = build(spec['method'], c, spec['num_samples'],
                  spec['offset_std']).train()
    forward_backward = passes_of(block, torch.randn(b, c, h,
                                                    w))['forward_backward']
    forward_backward()  # warm-up: the allocator is then tuned for it
    print(
        'RESULT ' + json.dumps(
            dict(
                method=spec['method'],
                peak_mem_mb=peak_memory_mb(forward_backward))),
        flush=True)


def _run_worker(kind, spec):
    proc = subprocess.run(
        [sys.executable, __file__, '--worker', kind,
         json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True)
    found = [
        json.loads(ln[len('RESULT '):]) for ln in proc.stdout.splitlines()
        if ln.startswith('RESULT ')
    ]
    if proc.returncode != 0 or not found:
        return None, (proc.stdout.strip().splitlines()[-1:]
                      or [f'exit {proc.returncode}'])[0]
    return found, None


def run_all(args):
    groups = [(size, c, b) for size in args.sizes for c in args.channels
              for b in args.batches]
    try:
        from tqdm import tqdm
        progress = tqdm(groups, desc='benchmark', unit='size')
    except ImportError:
        progress = groups
    rows = []
    for size, c, b in progress:
        n = SIZES[size][0] * SIZES[size][1]
        spec = dict(
            size=SIZES[size],
            channels=c,
            batch=b,
            num_samples=args.num_samples,
            repeats=args.repeats,
            budget_s=args.budget_s,
            offset_std=args.offset_std)
        group, runnable = {}, []
        for method in args.methods:
            row = dict(method=method, size_name=size, n=n, channels=c, batch=b)
            est = {
                bw: estimate_gb(method, n, c, b, args.num_samples, bw)
                for bw in (False, True)
            }
            if est[False] > args.max_gb:
                row['skipped'] = f'estimated {est[False]:.0f} GB > --max-gb'
            else:
                backward = est[True] <= args.max_gb
                if not backward:
                    row['skipped_backward'] = (f'estimated {est[True]:.0f} '
                                               f'GB > --max-gb')
                runnable.append((method, backward))
            group[method] = row
        found, error = _run_worker('time', dict(spec, methods=runnable))
        for method, _ in runnable:
            if error:
                group[method]['error'] = error
            else:
                group[method].update(
                    next(r for r in found if r['method'] == method))
        for method, backward in runnable:
            if backward and not error:
                found, mem_error = _run_worker('memory',
                                               dict(spec, method=method))
                if mem_error:
                    group[method]['error'] = mem_error
                else:
                    group[method].update(found[0])
        rows.extend(group.values())
    add_ratios(rows)
    return rows


def add_ratios(rows):
    """Ratios to nonlocal2d of the same size, channels and batch."""
    base = {
        (r['size_name'], r['channels'], r['batch']): r
        for r in rows if r['method'] == 'nonlocal2d'
    }
    for r in rows:
        ref = base.get((r['size_name'], r['channels'], r['batch']))
        for key in ('forward_ms', 'forward_backward_ms', 'peak_mem_mb'):
            if ref and key in r and ref.get(key):
                r[key.rsplit('_', 1)[0] + '_ratio'] = r[key] / ref[key]


def _fmt(value, fmt):
    return '-' if value is None else format(value, fmt)


def _ratio(rows, key, num, den, size, c, b):
    pick = {
        r['method']: r
        for r in rows
        if r['size_name'] == size and r['channels'] == c and r['batch'] == b
    }
    a, d = pick.get(num, {}).get(key), pick.get(den, {}).get(key)
    return a / d if a and d else None


def ratios(rows):
    """The ratios the fused kernel is judged by, per channels and batch
    (the goals they are judged against live in docs/benchmarks.md)."""
    table = []
    for c in sorted({r['channels'] for r in rows}):
        for b in sorted({r['batch'] for r in rows}):

            def add(what, values):
                table.append(
                    dict(channels=c, batch=b, what=what, values=values))

            sizes = [
                s for s in SIZES
                if any(r['size_name'] == s and r['channels'] == c
                       and r['batch'] == b for r in rows)
            ]

            def each_size(key, num, den):
                return {s: _ratio(rows, key, num, den, s, c, b) for s in sizes}

            add('SNL fwd / floor', each_size('forward_ms', 'snl', 'floor'))
            add('SNL fwd+bwd / floor',
                each_size('forward_backward_ms', 'snl', 'floor'))
            add('SNL fwd / NonLocal2d',
                each_size('forward_ms', 'snl', 'nonlocal2d'))
            for key, name in (('forward_ms', 'fwd'), ('forward_backward_ms',
                                                      'fwd+bwd')):
                pick = {
                    r['size_name']: r.get(key)
                    for r in rows if r['method'] == 'snl'
                    and r['channels'] == c and r['batch'] == b
                }
                big, small = pick.get('128x256'), pick.get('64x128')
                add(f'SNL {name} time 128x256 / 64x128',
                    {'': big / small if big and small else None})
            add('SNL peak memory fwd+bwd / NonLocal2d',
                each_size('peak_mem_mb', 'snl', 'nonlocal2d'))
            add('floor, convs one by one / as one GEMM (fwd)',
                each_size('forward_ms', 'floor_separate', 'floor'))
            add('SNL csr / cpp (fwd)', each_size('forward_ms', 'snl_csr',
                                                 'snl'))
    return table


def ratios_markdown(table):
    lines = ['| C | B | ratio | values |', '| --- | --- | --- | --- |']
    for g in table:
        vals = [(s, v) for s, v in g['values'].items() if v is not None]
        if vals:
            text = ', '.join(f'{s + " " if s else ""}{v:.2f}' for s, v in vals)
            lines.append(f"| {g['channels']} | {g['batch']} | {g['what']} "
                         f'| {text} |')
    return '\n'.join(lines) + '\n'


def markdown(rows):
    head = ('| size | N | C | B | method | forward ms | ratio | fwd+bwd ms '
            '| ratio | peak MB fwd+bwd | ratio |\n'
            '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- '
            '| --- |\n')
    lines = []
    for r in rows:
        note = r.get('skipped') or r.get('error')
        lines.append(
            f"| {r['size_name']} | {r['n']} | {r['channels']} | "
            f"{r['batch']} | {r['method']} | "
            f"{_fmt(r.get('forward_ms'), '.1f') if not note else note} | "
            f"{_fmt(r.get('forward_ratio'), '.2f')} | "
            f"{_fmt(r.get('forward_backward_ms'), '.1f')} | "
            f"{_fmt(r.get('forward_backward_ratio'), '.2f')} | "
            f"{_fmt(r.get('peak_mem_mb'), '.0f')} | "
            f"{_fmt(r.get('peak_mem_ratio'), '.2f')} |")
    return head + '\n'.join(lines) + '\n'


def plot(rows, path, channels, batch):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 5))
    for method in METHODS:
        for key, style in (('forward_ms', '-o'), ('forward_backward_ms',
                                                  '--s')):
            pts = sorted((r['n'], r[key]) for r in rows
                         if r['method'] == method and key in r
                         and r['channels'] == channels and r['batch'] == batch)
            if pts:
                ax.plot(
                    *zip(*pts),
                    style,
                    label=f'{method} '
                    f'{"fwd" if key == "forward_ms" else "fwd+bwd"}')
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlabel('N = H x W (feature pixels)')
    ax.set_ylabel('time (ms, median)')
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
    parser.add_argument('--worker', nargs=2, help=argparse.SUPPRESS)
    parser.add_argument(
        '--out',
        default='work_dirs/benchmark_snl',
        help='folder for the tables, JSON and plot (default '
        '%(default)s)')
    parser.add_argument(
        '--sizes',
        nargs='+',
        default=list(SIZES),
        choices=list(SIZES),
        help='feature map sizes '
        '(default: all)')
    parser.add_argument(
        '--channels',
        nargs='+',
        type=int,
        default=[512],
        help='block input channels (default 512)')
    parser.add_argument(
        '--batches',
        nargs='+',
        type=int,
        default=[1, 2],
        help='batch sizes (default 1 2)')
    parser.add_argument(
        '--methods',
        nargs='+',
        default=list(DEFAULT_METHODS),
        choices=METHODS,
        help='what to time (default: '
        f'{" ".join(DEFAULT_METHODS)})')
    parser.add_argument(
        '--num-samples',
        type=int,
        default=81,
        help='SNL points K (default %(default)s)')
    parser.add_argument(
        '--offset-std',
        type=float,
        default=2.0,
        help='standard deviation of the offsets, pixels')
    parser.add_argument(
        '--repeats',
        type=int,
        default=5,
        help='timed rounds (median reported)')
    parser.add_argument(
        '--budget-s',
        type=float,
        default=3.0,
        help='fewer rounds for a method this slow a pass')
    parser.add_argument(
        '--max-gb',
        type=float,
        default=6.0,
        help='skip passes estimated to need more memory')
    args = parser.parse_args(argv)
    if args.worker:
        kind, spec = args.worker
        return (time_worker if kind == 'time' else memory_worker)(
            json.loads(spec))
    start = time.time()
    rows = run_all(args)
    table = ratios(rows)
    os.makedirs(args.out, exist_ok=True)
    command = ' '.join(['python'] + [osp.relpath(sys.argv[0])] + sys.argv[1:])
    with open(osp.join(args.out, 'results.json'), 'w') as f:
        json.dump(
            dict(
                command=command,
                threads=_threads(),
                minutes=(time.time() - start) / 60,
                rows=rows,
                ratios=table),
            f,
            indent=1)
    text = markdown(rows) + '\n' + ratios_markdown(table)
    with open(osp.join(args.out, 'results.md'), 'w') as f:
        f.write(text)
    c, b = args.channels[0], args.batches[0]
    plot(rows, osp.join(args.out, 'time_vs_n.png'), c, b)
    print(text)
    print(f'{(time.time() - start) / 60:.1f} min; written: {args.out}/'
          f'results.json, results.md, time_vs_n.png')


def _threads():
    import torch
    return torch.get_num_threads()


if __name__ == '__main__':
    main()
