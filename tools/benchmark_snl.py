"""Time and memory of the SNL block against dense non-local blocks.

Measures, in one run on this machine, for each feature size, channel count
and batch size:

* ``snl``: :class:`SparseNonLocal2d` (K=81), fast path (``csr`` backend);
* ``snl_reference``: the same block on the ``grid_sample`` reference;
* ``nonlocal2d``: mmcv's ``NonLocal2d`` (embedded Gaussian, scaled), which
  mmseg's ``NLHead`` uses;
* ``dense_sdpa``: the same dense non-local with
  ``F.scaled_dot_product_attention`` (no N x N matrix in memory on CPU).

Forward time (no grad), forward+backward time, and the peak memory of
forward+backward. Each measurement runs in a fresh subprocess; peak memory is
the growth of the process's peak resident set during one forward+backward
after the timed ones (see :func:`peak_memory_mb`), so it counts everything
the pass allocates, whatever allocates it. Configurations whose
estimated memory exceeds ``--max-gb`` are skipped and reported as such.

Example::

    python tools/benchmark_snl.py --out work_dirs/benchmark_snl

writes ``results.json``, ``results.md`` and ``time_vs_n.png`` there.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

METHODS = ('snl', 'snl_reference', 'nonlocal2d', 'dense_sdpa')
SIZES = {'49x49': (49, 49), '64x128': (64, 128), '97x97': (97, 97),
         '128x256': (128, 256)}




def build(method, channels, num_samples):
    import torch.nn.functional as F
    from mmcv.cnn import ConvModule, NonLocal2d
    from torch import nn

    from mmseg_ssanet.models import SparseNonLocal2d

    if method in ('snl', 'snl_reference'):
        block = SparseNonLocal2d(
            channels, num_samples=num_samples,
            backend='csr' if method == 'snl' else 'reference')
        # Trained offsets are not zero: put samples between pixels.
        nn.init.normal_(block.offset.conv.weight, std=0.02)
        return block
    if method == 'nonlocal2d':
        return NonLocal2d(channels, reduction=2, use_scale=True,
                          mode='embedded_gaussian')

    class DenseNonLocalSDPA(nn.Module):
        """NonLocal2d's layers, attention by scaled_dot_product_attention."""

        def __init__(self, c):
            super().__init__()
            inter = c // 2
            self.g, self.theta, self.phi = (
                ConvModule(c, inter, 1, act_cfg=None) for _ in range(3))
            self.conv_out = ConvModule(inter, c, 1, act_cfg=None)

        def forward(self, x):
            b, _, h, w = x.shape
            q, k, v = (m(x).flatten(2).transpose(1, 2)
                       for m in (self.theta, self.phi, self.g))
            y = F.scaled_dot_product_attention(q, k, v)
            return x + self.conv_out(y.transpose(1, 2).reshape(b, -1, h, w))

    return DenseNonLocalSDPA(channels)


def estimate_gb(method, n, c, b, k, backward):
    """Rough upper bound of a pass's memory, to skip what cannot fit."""
    feats = 8 * b * n * c * 4  # inputs, projections, outputs
    if method == 'nonlocal2d':
        extra = b * n * n * 4 * (4 if backward else 2)
    elif method == 'snl_reference':
        extra = b * n * k * (c + c // 2) * 4 * (3 if backward else 1)
    elif method == 'snl':
        extra = b * n * 4 * k * 8 * (6 if backward else 3)
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


def worker(spec):
    """One measurement in this process; prints a JSON line."""
    import torch
    torch.manual_seed(0)
    method, (h, w), c, b, k = (spec['method'], spec['size'], spec['channels'],
                               spec['batch'], spec['num_samples'])
    block = build(method, c, k).train()
    x = torch.randn(b, c, h, w)

    def forward():
        with torch.no_grad():
            block(x)

    def forward_backward():
        xg = x.detach().requires_grad_()
        block(xg).sum().backward()
        block.zero_grad(set_to_none=True)

    result = dict(spec)
    for name, fn, wanted in (('forward_ms', forward, True),
                             ('forward_backward_ms', forward_backward,
                              spec['backward'])):
        if not wanted:
            continue
        fn()  # warm-up (allocator, oneDNN primitives)
        start = time.perf_counter()
        fn()
        once = time.perf_counter() - start
        repeats = max(1, min(spec['repeats'], int(spec['budget_s'] / once)))
        times = [once]
        for _ in range(repeats - 1):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        result[name] = 1000 * sorted(times)[len(times) // 2]  # median
    if spec['backward']:  # after timing: the allocator is now tuned for it
        result['peak_mem_mb'] = peak_memory_mb(forward_backward)
    print('RESULT ' + json.dumps(result), flush=True)


def run_all(args):
    specs = []
    for size in args.sizes:
        for c in args.channels:
            for b in args.batches:
                for method in args.methods:
                    specs.append(dict(method=method, size_name=size,
                                      size=SIZES[size], channels=c, batch=b,
                                      num_samples=args.num_samples,
                                      repeats=args.repeats,
                                      budget_s=args.budget_s))
    rows = []
    try:
        from tqdm import tqdm
        progress = tqdm(specs, desc='benchmark', unit='run')
    except ImportError:
        progress = specs
    for spec in progress:
        n = spec['size'][0] * spec['size'][1]
        est = {bw: estimate_gb(spec['method'], n, spec['channels'],
                               spec['batch'], spec['num_samples'], bw)
               for bw in (False, True)}
        row = dict(spec, n=n)
        if est[False] > args.max_gb:
            row['skipped'] = f'estimated {est[False]:.0f} GB > --max-gb'
            rows.append(row)
            continue
        spec = dict(spec, backward=est[True] <= args.max_gb)
        if not spec['backward']:
            row['skipped_backward'] = (f'estimated {est[True]:.0f} GB > '
                                       f'--max-gb')
        proc = subprocess.run(
            [sys.executable, __file__, '--worker', json.dumps(spec)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        found = [ln for ln in proc.stdout.splitlines()
                 if ln.startswith('RESULT ')]
        if proc.returncode != 0 or not found:
            row['error'] = proc.stdout.strip().splitlines()[-1:] or [
                f'exit {proc.returncode}']
            rows.append(row)
            continue
        row.update(json.loads(found[-1][len('RESULT '):]), n=n)
        rows.append(row)
    add_ratios(rows)
    return rows


def add_ratios(rows):
    """Ratios to nonlocal2d of the same size, channels and batch."""
    base = {(r['size_name'], r['channels'], r['batch']): r for r in rows
            if r['method'] == 'nonlocal2d'}
    for r in rows:
        ref = base.get((r['size_name'], r['channels'], r['batch']))
        for key in ('forward_ms', 'forward_backward_ms', 'peak_mem_mb'):
            if ref and key in r and ref.get(key):
                r[key.rsplit('_', 1)[0] + '_ratio'] = r[key] / ref[key]


def _fmt(value, fmt):
    return '-' if value is None else format(value, fmt)


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
        for key, style in (('forward_ms', '-o'),
                           ('forward_backward_ms', '--s')):
            pts = sorted((r['n'], r[key]) for r in rows
                         if r['method'] == method and key in r
                         and r['channels'] == channels and r['batch'] == batch)
            if pts:
                ax.plot(*zip(*pts), style, label=f'{method} '
                        f'{"fwd" if key == "forward_ms" else "fwd+bwd"}')
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlabel('N = H x W (feature pixels)')
    ax.set_ylabel('time (ms, median)')
    ax.set_title(f'SNL vs dense non-local, C={channels}, batch {batch}')
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    parser.add_argument('--out', default='work_dirs/benchmark_snl')
    parser.add_argument('--sizes', nargs='+', default=list(SIZES),
                        choices=list(SIZES))
    parser.add_argument('--channels', nargs='+', type=int, default=[512, 256])
    parser.add_argument('--batches', nargs='+', type=int, default=[1, 2])
    parser.add_argument('--methods', nargs='+', default=list(METHODS),
                        choices=METHODS)
    parser.add_argument('--num-samples', type=int, default=81)
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed repeats (median reported)')
    parser.add_argument('--budget-s', type=float, default=3.0,
                        help='fewer repeats when one pass is this slow')
    parser.add_argument('--max-gb', type=float, default=12.0,
                        help='skip passes estimated to need more memory')
    args = parser.parse_args(argv)
    if args.worker:
        return worker(json.loads(args.worker))
    rows = run_all(args)
    os.makedirs(args.out, exist_ok=True)
    with open(osp.join(args.out, 'results.json'), 'w') as f:
        json.dump(dict(command=' '.join([osp.basename(sys.executable)]
                                        + sys.argv),
                       threads=_threads(), rows=rows), f, indent=1)
    table = markdown(rows)
    with open(osp.join(args.out, 'results.md'), 'w') as f:
        f.write(table)
    c, b = args.channels[0], args.batches[0]
    plot(rows, osp.join(args.out, 'time_vs_n.png'), c, b)
    print(table)
    print(f'written: {args.out}/results.json, results.md, time_vs_n.png')


def _threads():
    import torch
    return torch.get_num_threads()


if __name__ == '__main__':
    main()
