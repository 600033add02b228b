"""One-command report of the SNL operator on a GPU (torch and triton only).

For a machine with a CUDA GPU (mmcv not needed): correctness of every
backend that runs there against a float64 ``reference`` (values and the
four gradients; fp64, fp32, bf16 and fp16 inputs), whether triton's backward
is bitwise reproducible (by default and under
``torch.use_deterministic_algorithms``), time and peak memory of the
operator beside dense attention in plain torch,
``F.scaled_dot_product_attention`` (which SDPA backend ran is recorded)
and the ``reference`` path (:mod:`mmseg_ssanet.benchmark`: interleaved
rounds timed by CUDA events, the median), and the static resource table of
the Triton kernels for this GPU's architecture (``triton_resources.py``);
with ``--train-configs``, short training runs of those configs on
generated data (``benchmark_training.py``, where mmcv's ops run on the
device). Writes ``report.md`` and ``report.json``.

Example (on the GPU machine)::

    python tools/analysis_tools/gpu_report.py --out work_dirs/gpu_report

CI runs it end to end at a tiny size on CPU tensors under
``TRITON_INTERPRET=1`` (``--device cpu``), so that it is not dead code;
CPU times there mean nothing.
"""
import argparse
import itertools
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

import torch

# the repo root: the report runs from a plain checkout (a bare GPU machine)
sys.path.insert(0, osp.abspath(osp.join(__file__, *['..'] * 3)))
from mmseg_ssanet.benchmark import (dense_attention, interleaved,
                                    markdown_table, medians_ms, peak_memory_mb,
                                    sdpa_attention, write_outputs)
from mmseg_ssanet.ops import sparse_nonlocal_attention
from mmseg_ssanet.ops.backends import BACKENDS
from mmseg_ssanet.utils.argument_types import image_size

DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def _inputs(b, cq, c, h, w, k, dtype, device, seed=0):
    """Query, key, value in ``dtype``; offsets (a few pixels) in at least
    float32, as the operator uses them: offsets rounded to 8 bits put
    points exactly on pixel lines, where the offset gradient is one-sided
    and ``grid_sample``'s rounding may pick the other side."""
    g = torch.Generator().manual_seed(seed)
    q, key = (torch.randn(b, cq, h, w, generator=g) for _ in range(2))
    v = torch.randn(b, c, h, w, generator=g)
    off = torch.randn(b, 2 * k, h, w, generator=g) * 2
    off_dtype = torch.promote_types(dtype, torch.float32)
    return [
        x.to(device, t).contiguous(memory_format=torch.channels_last)
        for x, t in ((q, dtype), (key, dtype), (v, dtype), (off, off_dtype))
    ]


def _value_and_grads(backend, inputs, kernel, grad_dtype=torch.float32):
    """The output and the four gradients of a weighted sum of it, whose
    weights are exact in ``grad_dtype`` (the dtype of the run compared:
    the gradients' errors are then the backend's own, not grad_out's
    rounding)."""
    xs = [x.detach().requires_grad_() for x in inputs]
    out = sparse_nonlocal_attention(*xs, kernel, backend=backend)
    weight = torch.linspace(-1, 1, out.numel(), device=out.device)
    weight = weight.to(grad_dtype).float()
    grads = torch.autograd.grad((out.float() * weight.view_as(out)).sum(), xs)
    return [out.detach(), *grads]


def correctness(args, device):
    """Relative error (max |error| / max |value|) of each backend and input
    dtype against ``reference`` in float64 on the same (rounded) inputs:
    the kernel's arithmetic and the rounding of its results to the input
    dtype, not the rounding of its inputs."""
    side = round(args.k**0.5)
    shape = (2, args.cq, args.c, args.check_size[0], args.check_size[1],
             args.k)
    rows = []
    for name, backend in BACKENDS.items():
        reason = backend.unavailable(torch.device(device))
        if reason:
            rows.append(dict(backend=name, dtype='-', skipped=reason))
            continue
        for dtype in ('fp64', 'fp32', 'bf16', 'fp16'):
            torch_dtype = DTYPES.get(dtype, torch.float64)
            inputs = _inputs(*shape, torch_dtype, device)
            got = _value_and_grads(name, inputs, side, torch_dtype)
            want = _value_and_grads('reference', [x.double() for x in inputs],
                                    side, torch_dtype)
            errors = [((a.double() - b).abs().max() /
                       b.abs().max().clamp_min(1e-30)).item()
                      for a, b in zip(got, want)]
            rows.append(
                dict(
                    backend=name,
                    dtype=dtype,
                    **dict(
                        zip([
                            'out', 'grad_query', 'grad_key', 'grad_value',
                            'grad_offset'
                        ], errors))))
    return rows


def determinism(args, device):
    """Is the triton backward bitwise equal from run to run?"""
    if BACKENDS['triton'].unavailable(torch.device(device)):
        return []
    side = round(args.k**0.5)
    inputs = _inputs(2, args.cq, args.c, args.check_size[0],
                     args.check_size[1], args.k, torch.float32, device)
    rows = []
    for mode in (False, True):
        before = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(mode)
        try:
            runs = [_value_and_grads('triton', inputs, side) for _ in range(3)]
        finally:
            torch.use_deterministic_algorithms(before)
        same = all(
            torch.equal(a, b) for run in runs[1:]
            for a, b in zip(runs[0], run))
        rows.append(dict(deterministic_algorithms=mode, bitwise_equal=same))
    return rows


def sdpa_backend(q, k, v):
    """The first SDPA backend, in torch's order, that takes these inputs."""
    from mmseg_ssanet.features import sdpa_backend as only
    for backend in ('FLASH_ATTENTION', 'EFFICIENT_ATTENTION',
                    'CUDNN_ATTENTION', 'MATH'):
        try:
            with only(backend):
                sdpa_attention(q, k, v, scale=1.0)
            return backend
        except (RuntimeError, AttributeError):  # AttributeError: no such
            continue
    return 'none'


def _passes(fn, inputs):
    """Forward (no grad) and forward+backward of ``fn`` on ``inputs``."""
    xs = [x.detach().requires_grad_() for x in inputs]

    def forward():
        with torch.no_grad():
            fn(*inputs)

    def forward_backward():
        fn(*xs).float().sum().backward()

    return {'forward': forward, 'forward_backward': forward_backward}


def timing(args, device):
    """Forward and forward+backward of each method in interleaved rounds
    (the median), and the forward+backward's peak memory on CUDA."""
    side = round(args.k**0.5)
    methods = {
        f'snl {backend}':
        lambda q, k, v, o, backend=backend: sparse_nonlocal_attention(
            q, k, v, o, side, backend=backend)
        for backend in ('triton', 'reference')
        if not BACKENDS[backend].unavailable(torch.device(device))
    }
    # unscaled, as the SNL operator here (the paper scales neither)
    methods['dense torch'] = lambda q, k, v, o: dense_attention(q, k, v, 1.0)
    methods['dense sdpa'] = lambda q, k, v, o: sdpa_attention(q, k, v, 1.0)
    table = []
    for (h, w), b, dtype in itertools.product(args.sizes, args.batches,
                                              args.dtypes):
        inputs = _inputs(b, args.cq, args.c, h, w, args.k, DTYPES[dtype],
                         device)
        sdpa = sdpa_backend(*inputs[:3])
        rows, fns = {}, {}
        for name, fn in methods.items():
            rows[name] = row = dict(
                size=f'{h}x{w}',
                batch=b,
                dtype=dtype,
                method=name,
                sdpa_backend=sdpa if 'sdpa' in name else '')
            if name.startswith('dense') and \
                    (h * w)**2 * b * 4 > args.max_dense_bytes:
                row['skipped'] = 'N x N too large'
                continue
            calls = _passes(fn, inputs)
            try:  # a method that fails (out of memory) is left out
                for call in calls.values():
                    call()
            except (RuntimeError, torch.OutOfMemoryError) as err:
                row['skipped'] = str(err).split('\n')[0][:120]
                continue
            fns.update({(name, p): call for p, call in calls.items()})
        times = medians_ms(interleaved(fns, args.repeats, device=device))
        for (name, p), ms in times.items():
            rows[name][f'{p}_ms'] = ms
            if device == 'cuda' and p == 'forward_backward':
                rows[name]['peak_mb'] = peak_memory_mb(fns[name, p], device)
        table += rows.values()
    return table


def training(args, device):
    """Short training runs of ``--train-configs`` (benchmark_training.py)."""
    if not args.train_configs:
        return [dict(config='-', skipped='no --train-configs')]
    return _run_tool('benchmark_training.py', [
        *args.train_configs, '--size', 'x'.join(map(str, args.train_size)),
        '--iters',
        str(args.train_iters), '--batch',
        str(args.train_batch), '--device', device
    ], 'training.json')


def resources(args, device):
    """The static table of the Triton kernels for ``args.archs``."""
    if not args.archs:
        return []
    return _run_tool('triton_resources.py', [
        '--shapes', f'{args.cq},{args.c},{args.k}', '--archs',
        *map(str, args.archs)
    ], 'resources.json')


def _run_tool(name, options, result):
    """Runs another analysis tool into a temporary folder; its JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([
            sys.executable,
            osp.join(osp.dirname(osp.abspath(__file__)), name), *options,
            '--out', tmp
        ],
                              capture_output=True,
                              text=True)
        if proc.returncode:
            raise RuntimeError(f'{name} failed: {proc.stderr[-2000:]}')
        with open(osp.join(tmp, result)) as f:
            return json.load(f)


SECTIONS = [  # part, heading, columns
    ('correctness', 'Correctness (max |error| / max |value| against '
     'float64 reference)', [
         'backend', 'dtype', 'out', 'grad_query', 'grad_key', 'grad_value',
         'grad_offset', 'skipped'
     ]),
    ('determinism', 'Determinism of the triton backward',
     ['deterministic_algorithms', 'bitwise_equal']),
    ('timing', 'Time (ms) and peak memory (MB)', [
        'size', 'batch', 'dtype', 'method', 'forward_ms',
        'forward_backward_ms', 'peak_mb', 'sdpa_backend', 'skipped'
    ]),
    ('training', 'Short training runs on generated data', [
        'config', 'crop', 'batch', 'iterations', 'ms_per_iter', 'peak_mb',
        'skipped'
    ]),
    ('resources', 'Triton kernels for this architecture (ptxas -v)', [
        'kernel', 'dtype', 'target', 'registers', 'stack_bytes',
        'spill_store_bytes', 'spill_load_bytes'
    ]),
]


def markdown(report):
    env = report['environment']
    parts = [
        '# SNL operator on ' + env['device_name'], '',
        ', '.join(f'{k} {v}' for k, v in env.items())
    ]
    for part, heading, columns in SECTIONS:
        rows = report.get(part)
        parts += [
            '', f'## {heading}', '',
            '(not reached: the run stopped before this part)' if rows is None
            else markdown_table(rows, columns, missing='').rstrip()
        ]
    return '\n'.join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--out',
        default='work_dirs/gpu_report',
        help='folder for report.md and report.json')
    parser.add_argument(
        '--device',
        default='cuda',
        choices=['cuda', 'cpu'],
        help='cpu: the CI smoke run under TRITON_INTERPRET=1')
    parser.add_argument(
        '--sizes',
        nargs='+',
        type=image_size,
        default=[(64, 128), (96, 192), (128, 256)],
        metavar='HxW',
        help='feature maps to time')
    parser.add_argument(
        '--batches',
        nargs='+',
        type=int,
        default=[1, 2],
        help='batch sizes to time')
    parser.add_argument(
        '--dtypes',
        nargs='+',
        choices=['fp32', 'bf16'],
        default=['fp32', 'bf16'],
        help='dtypes to time')
    parser.add_argument(
        '--cq',
        type=int,
        default=256,
        help='query/key channels (the paper: C/2)')
    parser.add_argument('--c', type=int, default=512, help='value channels')
    parser.add_argument(
        '--k',
        type=int,
        default=81,
        help='sampling points, a square (49, 81, ...)')
    parser.add_argument(
        '--check-size',
        type=image_size,
        default=(12, 16),
        metavar='HxW',
        help='map of the correctness check')
    parser.add_argument(
        '--repeats',
        type=int,
        default=10,
        help='timed rounds, interleaved over the methods (median '
        'reported)')
    parser.add_argument(
        '--max-dense-bytes',
        type=float,
        default=8e9,
        help='skip dense attention whose N x N matrix '
        'would exceed this')
    parser.add_argument(
        '--archs',
        nargs='*',
        type=int,
        default=None,
        help='compute capabilities for the resource table '
        '(default: this GPU\'s; none on CPU)')
    parser.add_argument(
        '--train-configs',
        nargs='*',
        default=[
            'configs/ssanet_mobilenetv2_cityscapes.py',
            'configs/ssanet_r101_cityscapes.py'
        ],
        help='configs to train briefly where mmcv\'s ops run '
        'on the device, by benchmark_training.py (none: skip)')
    parser.add_argument(
        '--train-size',
        type=image_size,
        default=(512, 1024),
        metavar='HxW',
        help='generated images and crop')
    parser.add_argument(
        '--train-iters',
        type=int,
        default=20,
        help='iterations per config (2 are warm-up)')
    parser.add_argument(
        '--train-batch', type=int, default=2, help='images per iteration')
    args = parser.parse_args(argv)
    side = round(args.k**0.5)
    if side * side != args.k:
        parser.error(f'--k {args.k}: a square number of points (49, 81)')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('no CUDA device here; --device cpu runs the smoke '
                     'test under TRITON_INTERPRET=1')
    if args.archs is None:
        args.archs = ([
            int(''.join(map(str, torch.cuda.get_device_capability())))
        ] if args.device == 'cuda' else [])
    import triton
    env = dict(
        device_name=(torch.cuda.get_device_name()
                     if args.device == 'cuda' else 'cpu'),
        torch=torch.__version__,
        triton=triton.__version__,
        interpreter=os.environ.get('TRITON_INTERPRET') == '1')
    report = dict(environment=env)
    # Written after each part: a run stopped by a time limit keeps the
    # parts it finished.
    for name, part in (('correctness', correctness),
                       ('determinism', determinism), ('timing', timing),
                       ('training', training), ('resources', resources)):
        start = time.time()
        report[name] = part(args, args.device)
        env.setdefault('seconds', {})[name] = round(time.time() - start, 1)
        text = markdown(report)
        write_outputs(args.out, {'report.json': report, 'report.md': text})
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
