"""One-command report of the SNL operator on a GPU (torch and triton only).

For a machine with a CUDA GPU (mmcv not needed): every backend against a
float64 reference and the Triton backward's reproducibility
(``check_numerics.py``); time and peak memory of the operator beside dense
attention in plain torch, ``F.scaled_dot_product_attention`` (which SDPA
backend ran is recorded) and the ``reference`` path, in interleaved rounds
timed by CUDA events (the median); the static resource table of the Triton
kernels for this GPU's architecture (``triton_resources.py``). Writes
``report.md`` and ``report.json``.

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
from mmseg_ssanet.benchmark import markdown_table, write_outputs
from mmseg_ssanet.utils.argument_types import image_size

DTYPES = ('fp32', 'bf16')


def numerics(args, device):
    """Errors and determinism (check_numerics.py)."""
    found = _run_tool(
        'check_numerics.py',
        'numerics.json',
        device=device,
        size=args.check_size,
        cq=args.cq,
        c=args.c,
        k=args.k)
    return dict(correctness=found['errors'], determinism=found['determinism'])


def timing(args, device):
    """Time and peak memory beside dense attention, SDPA and ``reference``
    (benchmark_triton_variants.py)."""
    if not args.sizes:
        return [dict(method='-', skipped='no --sizes')]
    maps = [
        f'{h}x{w}:{b}'
        for (h, w), b in itertools.product(args.sizes, args.batches)
    ]
    return _run_tool(
        'benchmark_triton_variants.py',
        'variants.json',
        device=device,
        maps=maps,
        channels=f'{args.cq},{args.c}',
        k=args.k,
        dtypes=args.dtypes,
        repeats=args.repeats,
        max_dense_bytes=args.max_dense_bytes,
        **{'with': ['snl reference', 'dense sdpa']})


def resources(args, device):
    """The static table of the Triton kernels for ``args.archs``."""
    if not args.archs:
        return []
    return _run_tool(
        'triton_resources.py',
        'resources.json',
        shapes=f'{args.cq},{args.c},{args.k}',
        archs=args.archs)


def _run_tool(name, result, *positional, **options):
    """Runs another analysis tool into a temporary folder; its JSON.

    ``options``: ``--name value`` each (``_`` as ``-``; a list gives its
    values, a pair of ints a size ``HxW``)."""
    argv = [str(p) for p in positional]
    for key, value in options.items():
        if isinstance(value, tuple):
            value = 'x'.join(map(str, value))
        argv += [
            f'--{key.replace("_", "-")}',
            *map(str, value if isinstance(value, list) else [value])
        ]
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([
            sys.executable,
            osp.join(osp.dirname(osp.abspath(__file__)), name), *argv, '--out',
            tmp
        ],
                              capture_output=True,
                              text=True)
        if proc.returncode:
            raise RuntimeError(f'{name} failed: {proc.stderr[-2000:]}')
        with open(osp.join(tmp, result)) as f:
            return json.load(f)


SECTIONS = {  # part: heading; the columns are the rows' keys
    'correctness': 'Correctness (max |error| / max |value| against float64 '
    'reference)',
    'determinism': 'Determinism of the triton backward',
    'timing': 'Time (ms) and peak memory (MB)',
    'resources': 'Triton kernels for this architecture (ptxas -v)'
}


def markdown(report):
    env = report['environment']
    parts = [
        '# SNL operator on ' + env['device_name'], '',
        ', '.join(f'{k} {v}' for k, v in env.items())
    ]
    for part, heading in SECTIONS.items():
        rows = report.get(part)
        columns = list(dict.fromkeys(key for r in rows or [] for key in r))
        parts += [
            '', f'## {heading}', '',
            '(not reached: the run stopped before this part)' if rows is None
            else markdown_table(rows, columns, missing='').rstrip()
        ]
    return '\n'.join(parts)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add('--out', default='work_dirs/gpu_report', help='output folder')
    add('--device',
        default='cuda',
        choices=['cuda', 'cpu'],
        help='cpu: the CI smoke run under TRITON_INTERPRET=1')
    add('--sizes',
        nargs='*',
        type=image_size,
        default=[(64, 128), (96, 192), (128, 256)],
        metavar='HxW',
        help='feature maps to time (none: no timing)')
    add('--batches', nargs='+', type=int, default=[1, 2], help='to time')
    add('--dtypes',
        nargs='+',
        choices=DTYPES,
        default=list(DTYPES),
        help='to time')
    add('--cq', type=int, default=256, help='query/key channels (C/2)')
    add('--c', type=int, default=512, help='value channels')
    add('--k', type=int, default=81, help='sampling points, a square')
    add('--check-size', type=image_size, default=(12, 16), help='numerics')
    add('--repeats', type=int, default=10, help='timed rounds (the median)')
    add('--max-dense-bytes',
        type=float,
        default=8e9,
        help='larger N x N: skip')
    add('--archs',
        nargs='*',
        type=int,
        help='compute capabilities of the resource table (default: this '
        'GPU\'s; none on CPU)')
    args = parser.parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('no CUDA device here; --device cpu runs the smoke '
                     'test under TRITON_INTERPRET=1')
    return args


def main(argv=None):
    args = parse_args(argv)
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
    for part in (numerics, timing, resources):
        start = time.time()
        found = part(args, args.device)
        report.update(
            found if isinstance(found, dict) else {part.__name__: found})
        env.setdefault('seconds',
                       {})[part.__name__] = round(time.time() - start, 1)
        text = markdown(report)
        write_outputs(args.out, {'report.json': report, 'report.md': text})
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
