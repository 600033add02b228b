"""The Triton kernel's forward and backward variants side by side, beside
dense attention: forward and forward+backward time and peak memory.

For each map, channel set and dtype, one process times in interleaved rounds
(the median of ``--repeats``): each Triton forward variant
(``SSANET_TRITON_FORWARD``: ``gather``, ``halo``), the forward + backward with
each backward variant (``SSANET_TRITON_BACKWARD``: ``atomic``, ``sorted``,
``halo``) after the ``gather`` forward (rows ``triton, <variant> backward``),
and after the ``halo`` forward the ``sorted`` backward and the ``halo``
backward (the defaults), the latter also under
``torch.use_deterministic_algorithms(True)`` (``deterministic``); and
dense attention's forward and forward+backward in plain torch (unscaled, as the
SNL operator here); ``--with`` adds ``F.scaled_dot_product_attention`` (``dense
sdpa``, the backend that ran recorded) and the ``reference`` backend (``snl
reference``); ``--only`` times the rows it names and no others. On CUDA,
the peak memory of each forward+backward too. The
defaults are the configs' shapes: 49x49 with B = 2 (the 769x769 training crop
at output stride 16), 64x128 and 128x256 (1024x2048 and 2048x4096 images),
R101's channels (Cq 256, C 512) and MobileNetV2's (128, 256), K = 81, fp32 and
bf16.

Example (on a GPU machine)::

    python tools/analysis_tools/benchmark_triton_variants.py \\
        --out work_dirs/triton_variants

writes ``variants.md`` and ``variants.json`` there. On CPU tensors it runs
under Triton's interpreter (``TRITON_INTERPRET=1``), at small sizes only.
"""
import argparse
import itertools
import os
import os.path as osp
import sys

import torch

# the repo root: this tool runs from a plain checkout (a bare GPU machine)
sys.path.insert(0, osp.abspath(osp.join(__file__, *['..'] * 3)))

from mmseg_ssanet.benchmark import (attention_inputs, attention_passes,
                                    dense_attention, dense_too_large,
                                    first_sdpa_backend, sdpa_attention,
                                    time_passes)
from mmseg_ssanet.benchmark.tables import markdown_table, write_outputs
from mmseg_ssanet.ops import sparse_nonlocal_attention
from mmseg_ssanet.ops.backends.triton import (BACKWARD_ENV, BACKWARD_VARIANTS,
                                              DEFAULT_BACKWARD,
                                              DEFAULT_FORWARD, FORWARD_ENV,
                                              FORWARD_VARIANTS)
from mmseg_ssanet.utils.argument_types import image_size

DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}
COLUMNS = [
    'map', 'batch', ('channels', 'Cq, C'), 'dtype', 'method',
    ('forward_ms', 'forward ms', '.3f'),
    ('forward_backward_ms', 'fwd+bwd ms', '.3f'),
    ('peak_mb', 'peak MB', '.0f'), 'sdpa_backend', 'skipped'
]
OPTIONAL = ('snl reference', 'dense sdpa')  # --with


def _map(text):
    size, _, batch = text.partition(':')
    return image_size(size), int(batch or 1)


def _channels(text):
    cq, c = (int(v) for v in text.split(','))
    return cq, c


def methods(side, optional=()):
    """Each method's name -> (its call on q, k, v, offsets; its passes)."""

    def snl(forward=DEFAULT_FORWARD,
            backward=DEFAULT_BACKWARD,
            backend='triton',
            deterministic=False):

        def call(q, k, v, o):
            # read at the forward's and the backward's launch
            os.environ[FORWARD_ENV], os.environ[BACKWARD_ENV] = (forward,
                                                                 backward)
            torch.use_deterministic_algorithms(deterministic)
            return sparse_nonlocal_attention(q, k, v, o, side, backend=backend)

        return call

    def dense(attention):

        def call(q, k, v, o):
            torch.use_deterministic_algorithms(False)
            return attention(q, k, v, 1.0)

        return call

    both, backward = ('forward', 'forward_backward'), ('forward_backward', )
    found = {
        f'triton, {v} forward': (snl(forward=v), ('forward', ))
        for v in FORWARD_VARIANTS
    }
    found.update({
        f'triton, {v} backward': (snl(forward='gather', backward=v), backward)
        for v in BACKWARD_VARIANTS
    })
    found['triton, halo forward, sorted backward'] = (snl(
        forward='halo', backward='sorted'), backward)
    found['triton, halo forward, halo backward'] = (snl(
        forward='halo', backward='halo'), backward)
    found['triton, halo forward, halo backward, deterministic'] = (snl(
        forward='halo', backward='halo', deterministic=True), backward)
    found['dense torch'] = (dense(dense_attention), both)
    extra = {
        'snl reference': (snl(backend='reference'), both),
        'dense sdpa': (dense(sdpa_attention), both)
    }
    found.update({name: extra[name] for name in optional})
    return found


def measure(args, device):
    found = methods(
        round(args.k**0.5), OPTIONAL if args.only else args.with_methods)
    if args.only:
        found = {name: found[name] for name in args.only}
    rows = []
    for ((h, w), b), (cq,
                      c), dtype in itertools.product(args.maps, args.channels,
                                                     args.dtypes):
        inputs = attention_inputs(b, (cq, c), (h, w), args.k, DTYPES[dtype],
                                  device)
        too_large = dense_too_large(b, (h, w), args.max_dense_bytes)
        times = time_passes(
            {
                name: attention_passes(fn, inputs, passes)
                for name, (fn, passes) in found.items()
                if not (name.startswith('dense') and too_large)
            },
            args.repeats,
            device=device,
            peak_of=['forward_backward']
            if torch.device(device).type == 'cuda' else [])
        for name in found:
            rows.append(
                dict(
                    map=f'{h}x{w}',
                    batch=b,
                    channels=f'{cq}, {c}',
                    dtype=dtype,
                    method=name,
                    sdpa_backend=first_sdpa_backend(*inputs[:3])
                    if name == 'dense sdpa' and not too_large else None,
                    **times.get(name, dict(skipped=too_large))))
    os.environ.pop(BACKWARD_ENV, None)
    os.environ.pop(FORWARD_ENV, None)
    torch.use_deterministic_algorithms(False)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--maps',
        nargs='+',
        type=_map,
        default=[_map(m) for m in ('49x49:2', '64x128:1', '128x256:1')],
        metavar='HxW[:B]',
        help='feature maps and batch (default 49x49:2 64x128:1 128x256:1)')
    parser.add_argument(
        '--channels',
        nargs='+',
        type=_channels,
        default=[(256, 512), (128, 256)],
        metavar='CQ,C',
        help='query/key and value channels (default 256,512 128,256)')
    parser.add_argument(
        '--k', type=int, default=81, help='points, a square (default 81)')
    parser.add_argument(
        '--dtypes',
        nargs='+',
        choices=list(DTYPES),
        default=['fp32', 'bf16'],
        help='input dtypes (default fp32 bf16)')
    parser.add_argument(
        '--repeats', type=int, default=20, help='timed rounds (default 20)')
    parser.add_argument(
        '--device',
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='cuda, or cpu under TRITON_INTERPRET=1 (default: cuda where '
        'present)')
    parser.add_argument(
        '--max-dense-bytes',
        type=float,
        default=8e9,
        help='skip dense attention whose N x N fp32 matrix is larger')
    parser.add_argument(
        '--with',
        dest='with_methods',
        nargs='*',
        choices=OPTIONAL,
        default=[],
        help='also time these (the reference backend is slow)')
    parser.add_argument(
        '--only',
        nargs='+',
        metavar='METHOD',
        help='time only these rows, named as in the table\'s method column '
        '(e.g. "triton, halo forward" "dense torch")')
    parser.add_argument('--out', help='folder for variants.md and .json')
    args = parser.parse_args(argv)
    if round(args.k**0.5)**2 != args.k:
        parser.error(f'--k {args.k}: a square (9, 49, 81...)')
    known = methods(1, OPTIONAL)
    unknown = [name for name in args.only or () if name not in known]
    if unknown:
        parser.error(f'--only {unknown[0]!r}: no such row; choose from '
                     f'{", ".join(repr(name) for name in known)}')
    rows = measure(args, args.device)
    text = markdown_table(rows, COLUMNS)
    print(text)
    if args.out:
        write_outputs(args.out, {'variants.md': text, 'variants.json': rows})
    return 0


if __name__ == '__main__':
    sys.exit(main())
