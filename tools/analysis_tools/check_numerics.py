"""Every SNL backend on this device against a float64 reference, and
whether the Triton backward is bitwise reproducible.

For each backend that runs here (the Triton backend's with its default
variants, and with each forward and backward variant the defaults do not
take: rows ``triton, gather forward``, ``triton, sorted backward``,
``triton, atomic backward``) and each input dtype (fp64, fp32, bf16,
fp16): the relative error, max |error| / max |value|, of the output and
the four gradients against ``reference`` in float64 on the same (rounded)
inputs, so the kernel's arithmetic and the rounding of its results to the
input dtype, not the rounding of its inputs. Then the Triton backward run
three times, by default and under ``torch.use_deterministic_algorithms``,
with the default variants (``halo``) and with the ``gather`` forward and
``sorted`` backward: bitwise equal or not.

Example (on a GPU machine; torch and triton, no mmcv)::

    python tools/analysis_tools/check_numerics.py --out work_dirs/numerics

writes ``numerics.md`` and ``numerics.json``. On CPU tensors the Triton
backend runs under ``TRITON_INTERPRET=1``.
"""
import argparse
import os
import os.path as osp
import sys

import torch

# the repo root: the tool runs from a plain checkout (a bare GPU machine)
sys.path.insert(0, osp.abspath(osp.join(__file__, *['..'] * 3)))
from mmseg_ssanet.benchmark import (attention_inputs, markdown_table,
                                    write_outputs)
from mmseg_ssanet.ops import sparse_nonlocal_attention
from mmseg_ssanet.ops.backends import BACKENDS
from mmseg_ssanet.ops.backends.triton import (BACKWARD_ENV, BACKWARD_VARIANTS,
                                              DEFAULT_BACKWARD,
                                              DEFAULT_FORWARD, FORWARD_ENV,
                                              FORWARD_VARIANTS)
from mmseg_ssanet.utils.argument_types import image_size

DTYPES = {
    'fp64': torch.float64,
    'fp32': torch.float32,
    'bf16': torch.bfloat16,
    'fp16': torch.float16
}
RESULTS = ('out', 'grad_query', 'grad_key', 'grad_value', 'grad_offset')
ERROR_COLUMNS = ['backend', 'dtype', *RESULTS, 'skipped']
DETERMINISM_COLUMNS = ['variants', 'deterministic_algorithms', 'bitwise_equal']
# the Triton variants whose reproducibility is checked: the defaults (the
# halo kernels, in order, atomics only for corners beyond a tile's halo),
# and the gather forward with the sorted backward (no float atomics)
REPRODUCED = [('default', {}),
              ('gather, sorted', {
                  FORWARD_ENV: 'gather',
                  BACKWARD_ENV: 'sorted'
              })]


def value_and_grads(backend, inputs, side, grad_dtype=torch.float32):
    """The output and the four gradients of a weighted sum of it, whose
    weights are exact in ``grad_dtype`` (the dtype of the run compared:
    the gradients' errors are then the backend's own, not grad_out's
    rounding)."""
    xs = [x.detach().requires_grad_() for x in inputs]
    out = sparse_nonlocal_attention(*xs, side, backend=backend)
    weight = torch.linspace(-1, 1, out.numel(), device=out.device)
    weight = weight.to(grad_dtype).float()
    grads = torch.autograd.grad((out.float() * weight.view_as(out)).sum(), xs)
    return [out.detach(), *grads]


# what is checked: (row name, backend, the variables it runs with)
CHECKED = [(name, name, {}) for name in BACKENDS]
AFTER_TRITON = list(BACKENDS).index('triton') + 1
CHECKED[AFTER_TRITON:AFTER_TRITON] = [
    *((f'triton, {v} forward', 'triton', {
        FORWARD_ENV: v
    }) for v in FORWARD_VARIANTS if v != DEFAULT_FORWARD),
    *((f'triton, {v} backward', 'triton', {
        BACKWARD_ENV: v
    }) for v in BACKWARD_VARIANTS if v != DEFAULT_BACKWARD),
]


def errors(args):
    """A row per backend and dtype: the relative error of each result."""
    side, rows = round(args.k**0.5), []
    for name, backend, variables in CHECKED:
        reason = BACKENDS[backend].unavailable(torch.device(args.device))
        if reason:
            rows.append(dict(backend=name, dtype='-', skipped=reason))
            continue
        for dtype, torch_dtype in DTYPES.items():
            inputs = attention_inputs(2, (args.cq, args.c), args.size, args.k,
                                      torch_dtype, args.device)
            os.environ.update(variables)
            try:
                got = value_and_grads(backend, inputs, side, torch_dtype)
            finally:
                for variable in variables:
                    os.environ.pop(variable)
            want = value_and_grads('reference', [x.double() for x in inputs],
                                   side, torch_dtype)
            rows.append(
                dict(
                    backend=name,
                    dtype=dtype,
                    **{
                        result: ((a.double() - b).abs().max() /
                                 b.abs().max().clamp_min(1e-30)).item()
                        for result, a, b in zip(RESULTS, got, want)
                    }))
    return rows


def determinism(args):
    """Is the Triton backward bitwise equal from run to run, by default and
    under ``torch.use_deterministic_algorithms``?"""
    if BACKENDS['triton'].unavailable(torch.device(args.device)):
        return []
    inputs = attention_inputs(2, (args.cq, args.c), args.size, args.k,
                              torch.float32, args.device)
    rows = []
    for name, variables in REPRODUCED:
        for mode in (False, True):
            before = torch.are_deterministic_algorithms_enabled()
            torch.use_deterministic_algorithms(mode)
            os.environ.update(variables)
            try:
                runs = [
                    value_and_grads('triton', inputs, round(args.k**0.5))
                    for _ in range(3)
                ]
            finally:
                torch.use_deterministic_algorithms(before)
                for variable in variables:
                    os.environ.pop(variable)
            same = all(
                torch.equal(a, b) for run in runs[1:]
                for a, b in zip(runs[0], run))
            rows.append(
                dict(
                    variants=name,
                    deterministic_algorithms=mode,
                    bitwise_equal=same))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add('--device',
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='cuda, or cpu (Triton under TRITON_INTERPRET=1)')
    add('--size', type=image_size, default=(12, 16), help='the map, HxW')
    add('--cq', type=int, default=256, help='query/key channels')
    add('--c', type=int, default=512, help='value channels')
    add('--k', type=int, default=81, help='points, a square (49, 81)')
    add('--out', help='folder for numerics.md and numerics.json')
    args = parser.parse_args(argv)
    if round(args.k**0.5)**2 != args.k:
        parser.error(f'--k {args.k}: a square number of points (49, 81)')
    result = dict(errors=errors(args), determinism=determinism(args))
    text = '\n'.join([
        '## Relative error against float64 reference', '',
        markdown_table(result['errors'], ERROR_COLUMNS, missing=''),
        '## Determinism of the Triton backward', '',
        markdown_table(result['determinism'], DETERMINISM_COLUMNS)
    ])
    print(text)
    if args.out:
        write_outputs(args.out, {'numerics.md': text, 'numerics.json': result})
    return 0


if __name__ == '__main__':
    sys.exit(main())
