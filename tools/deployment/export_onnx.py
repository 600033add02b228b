"""Export a trained SSANet to ONNX; check onnxruntime against PyTorch.

Example::

    python tools/deployment/export_onnx.py \
        configs/demo/ssanet_mobilenetv2_cpu_synthetic-cityscapes.py \
        work_dirs/demo/iter_400.pth IMAGE --out work_dirs/demo/ssanet.onnx

The graph takes any input height and width (dynamic axes). The check runs
onnxruntime and PyTorch (mmseg's ``encode_decode``) on the image at its own
size and resized to ``--check-size`` (default: 3/4 of its height, 5/4 of
its width), and reports for each the largest logit difference and the
share of pixels with the same predicted class. It fails above ``--atol``
(default 1e-3 on logits) or below 99.9% agreement at either size.
"""
import argparse
import functools
import sys

import mmcv
import numpy as np

from mmseg_ssanet.apis import load_segmentor, read_image
from mmseg_ssanet.apis.export import (check_graph, export_onnx, preprocess,
                                      reference_logits, run_onnx)
from mmseg_ssanet.models import SparseNonLocal2d
from mmseg_ssanet.utils.argument_types import add_cfg_options, image_size


def compare(onnx_file, inputs, expected):
    got = run_onnx(onnx_file, inputs)
    expected = expected.numpy()
    return (float(np.abs(got - expected).max()),
            float((got.argmax(1) == expected.argmax(1)).mean()))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='model config')
    parser.add_argument('checkpoint', help='trained weights')
    parser.add_argument(
        'image', help='an image to trace the graph on and '
        'to check it with')
    parser.add_argument(
        '--out',
        default='ssanet.onnx',
        help='ONNX file to write (default %(default)s)')
    parser.add_argument(
        '--opset',
        type=int,
        default=17,
        help='ONNX opset (default %(default)s)')
    parser.add_argument(
        '--atol',
        type=float,
        default=1e-3,
        help='largest logit difference allowed (default '
        '%(default)s)')
    parser.add_argument(
        '--check-size',
        type=functools.partial(image_size, minimum=32),
        help='second input size HxW to check (default: 3/4 '
        'of the height, 5/4 of the width)')
    add_cfg_options(parser)
    args = parser.parse_args(argv)
    try:
        model = load_segmentor(
            args.config, args.checkpoint, 'cpu', cfg_options=args.cfg_options)
        image = read_image(args.image)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
    inputs, expected = export_onnx(model, image, args.out, args.opset)
    h, w = image.shape[:2]
    second = args.check_size or (max(32, h * 3 // 4), max(32, w * 5 // 4))
    other = preprocess(model, mmcv.imresize(image, second[::-1]))
    print(f'exported {args.out} (opset {args.opset}, dynamic height and '
          f'width, traced at {h}x{w})')
    graph = check_graph(args.out, h, w)
    print(f'graph: onnx.checker (full) and shape inference pass; '
          f'{graph["nodes"]} nodes, operator domains {graph["domains"]}')
    for name, block in model.named_modules():
        if isinstance(block, SparseNonLocal2d):
            scope = '/' + name.replace('.', '/') + '/'
            _, shape, numel = check_graph(args.out, h, w, scope)['largest']
            print(f'largest intermediate of {name}: {list(shape)} '
                  f'({numel} elements)')
    failed = False
    for x, ref in ((inputs, expected), (other, reference_logits(model,
                                                                other))):
        max_diff, agree = compare(args.out, x, ref)
        print(f'input {tuple(x.shape)}: onnxruntime vs PyTorch: max |logit '
              f'diff| {max_diff:.2e}, same class on {100 * agree:.3f}% of '
              f'pixels')
        failed |= max_diff > args.atol or agree < 0.999
    if failed:
        sys.exit('error: onnxruntime output differs from PyTorch beyond '
                 'the tolerance')


if __name__ == '__main__':
    main()
