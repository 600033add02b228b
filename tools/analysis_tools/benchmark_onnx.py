"""Deployment cost: onnxruntime on the exported graph against PyTorch eager.

For a config (weights as initialised, or ``--checkpoint``): the graph is
exported once (``mmseg_ssanet.apis.export``, traced at ``--trace-size``,
dynamic height and width; its size and the export time are reported),
then for each ``--sizes`` one image-sized input runs ``--repeats`` times in
PyTorch eager (the default ``cpp`` SNL backend, mmseg's
``encode_decode``) and in onnxruntime, each path in a fresh process of its
own (onnxruntime's without torch or the plugin imported, as deployed;
:func:`mmseg_ssanet.benchmark.run_worker`): peak resident memory of that
process and the time of each run. Both use ``--threads`` threads. The
onnxruntime session takes the options the project's tools use
(``session_options``: the memory pattern off, which is what keeps its
memory near eager's); ``--ort-defaults`` measures onnxruntime's own
defaults instead.

Example (the numbers in docs/tools.md)::

    python tools/analysis_tools/benchmark_onnx.py \\
        configs/ssanet_r101_cityscapes.py \\
        --sizes 1024x2048 769x769 --out work_dirs/benchmark_onnx/r101

writes ``results.md`` and ``results.json`` there.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time


def _image(h, w):
    import numpy as np
    return np.random.RandomState(0).randint(0, 256, (h, w, 3), np.uint8)


def _model(args):
    import torch

    from mmseg_ssanet.apis import load_segmentor
    torch.manual_seed(0)
    return load_segmentor(
        args['config'],
        args['checkpoint'],
        'cpu',
        cfg_options=args['cfg_options'])


def export_worker(args):
    from mmseg_ssanet.apis.export import export_onnx
    model = _model(args)
    start = time.perf_counter()
    export_onnx(model, _image(*args['trace_size']), args['onnx'])
    return dict(
        export_s=time.perf_counter() - start,
        graph_mb=osp.getsize(args['onnx']) / 2**20)


def eager_worker(args):
    import torch

    from mmseg_ssanet.apis.export import preprocess
    torch.set_num_threads(args['threads'])
    model = _model(args).eval()
    inputs = preprocess(model, _image(*args['size']))
    shape = tuple(inputs.shape[2:])
    meta = [dict(img_shape=shape, pad_shape=shape, ori_shape=shape)]
    times = []
    for _ in range(args['repeats']):
        start = time.perf_counter()
        with torch.no_grad():
            model.encode_decode(inputs, meta)
        times.append(time.perf_counter() - start)
    return dict(times_s=times)


def ort_worker(args):
    import numpy as np
    import onnxruntime as ort

    # As a deployment process: onnxruntime and numpy alone (no torch, no
    # plugin, whose imports alone hold about 0.5 GB); the options of
    # mmseg_ssanet.apis.export.session_options, written out for that.
    options = ort.SessionOptions()
    options.intra_op_num_threads = args['threads']
    options.inter_op_num_threads = 1
    if not args['ort_defaults']:
        options.enable_mem_pattern = False
    session = ort.InferenceSession(
        args['onnx'], options, providers=['CPUExecutionProvider'])
    h, w = args['size']
    x = np.random.RandomState(0).randn(1, 3, h, w).astype(np.float32)
    times = []
    for _ in range(args['repeats']):
        start = time.perf_counter()
        session.run(None, {session.get_inputs()[0].name: x})
        times.append(time.perf_counter() - start)
    return dict(times_s=times)


WORKERS = dict(export=export_worker, eager=eager_worker, ort=ort_worker)


def run_worker(kind, spec):
    """One worker in a fresh process: its result, and for a path its
    process's peak resident memory (``peak_mb``)."""
    from mmseg_ssanet.benchmark import run_worker as run
    (result, ), peak_mb = run(osp.abspath(__file__), kind, spec)
    return result if kind == 'export' else dict(result, peak_mb=peak_mb)


COLUMNS = [
    ('size', 'input'),
    ('name', 'path'),
    ('peak_mb', 'peak memory (GB)', lambda r: f'{r["peak_mb"] / 1024:.2f}'),
    ('times_s', 'time (s), each run',
     lambda r: ', '.join(f'{t:.1f}' for t in r['times_s'])),
    ('peak_mb', 'memory vs eager',
     lambda r: f'{r["peak_mb"] / r["eager_mb"]:.2f}x'),
    ('times_s', 'time vs eager (last run)',
     lambda r: f'{r["times_s"][-1] / r["eager_s"]:.2f}x'),
]


def markdown(result):
    rows = [
        dict(
            row[path],
            size=row['size'],
            name=name,
            eager_mb=row['eager']['peak_mb'],
            eager_s=row['eager']['times_s'][-1]) for row in result['rows']
        for path, name in (('eager', 'PyTorch eager (cpp)'), ('ort',
                                                              'onnxruntime'))
    ]
    from mmseg_ssanet.benchmark import markdown_table
    return '\n'.join([
        f'# onnxruntime against PyTorch eager: {result["config"]}', '',
        f'Command: `{result["command"]}`  ',
        f'Graph: {result["graph_mb"]:.0f} MB, exported in '
        f'{result["export_s"]:.1f} s (traced at {result["trace_size"]});'
        f' {result["threads"]} threads; onnxruntime session: '
        f'{result["session"]}; {result["date"]}', '',
        markdown_table(rows, COLUMNS)
    ])


def main(argv=None):
    from mmseg_ssanet.benchmark import write_outputs
    from mmseg_ssanet.utils.argument_types import add_cfg_options, image_size
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='model config')
    parser.add_argument(
        '--checkpoint',
        default=None,
        help='trained weights (default: as initialised)')
    parser.add_argument(
        '--sizes',
        nargs='+',
        type=image_size,
        default=[(1024, 2048)],
        help='input sizes HxW')
    parser.add_argument(
        '--trace-size',
        type=image_size,
        default=(128, 256),
        help='size the graph is traced at (default 128x256)')
    parser.add_argument(
        '--threads',
        type=int,
        default=2,
        help='threads of both paths (default %(default)s)')
    parser.add_argument(
        '--repeats',
        type=int,
        default=2,
        help='runs per path and size (default %(default)s)')
    parser.add_argument(
        '--ort-defaults',
        action='store_true',
        help='onnxruntime\'s default session options instead '
        'of the tools\' (memory pattern off)')
    parser.add_argument(
        '--out',
        default='work_dirs/benchmark_onnx',
        help='folder for results.md, results.json and the '
        'graph')
    add_cfg_options(parser)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    spec = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        cfg_options=args.cfg_options,
        threads=args.threads,
        repeats=args.repeats,
        ort_defaults=args.ort_defaults,
        trace_size=args.trace_size,
        onnx=osp.join(args.out, 'model.onnx'))
    result = dict(
        config=args.config,
        threads=args.threads,
        command='python tools/analysis_tools/benchmark_onnx.py ' +
        ' '.join(sys.argv[1:] if argv is None else argv),
        trace_size='x'.join(map(str, args.trace_size)),
        session=('onnxruntime defaults'
                 if args.ort_defaults else 'enable_mem_pattern=False'),
        date=time.strftime('%Y-%m-%d'),
        rows=[])
    result.update(run_worker('export', spec))
    for size in args.sizes:
        row = dict(size='x'.join(map(str, size)))
        for path in ('eager', 'ort'):
            row[path] = run_worker(path, dict(spec, size=size))
            print(f'{row["size"]} {path}: {row[path]}', flush=True)
        result['rows'].append(row)
    text = markdown(result)
    write_outputs(args.out, {'results.json': result, 'results.md': text})
    print(text)


if __name__ == '__main__':
    if len(sys.argv) == 4 and sys.argv[1] == '--worker':
        # mmseg_ssanet.benchmark.print_result, written out: importing the
        # plugin would put torch into the onnxruntime worker's memory
        print(
            'RESULT ' +
            json.dumps(WORKERS[sys.argv[2]](json.loads(sys.argv[3]))),
            flush=True)
    else:
        main()
