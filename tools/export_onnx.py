"""Export a trained SSANet to ONNX; check onnxruntime against PyTorch.

Example::

    python tools/export_onnx.py configs/demo/ssanet_mobilenetv2_cpu_synthetic-cityscapes.py \
        work_dirs/demo/iter_400.pth --image IMAGE --out work_dirs/demo/ssanet.onnx

The graph takes any input height and width (dynamic axes). The check runs
onnxruntime and PyTorch (mmseg's ``encode_decode``) on the image at its own
size and resized to ``--check-size`` (default: 3/4 of its height, 5/4 of
its width), and reports for each the largest logit difference and the
share of pixels with the same predicted class. It fails above ``--atol``
(default 1e-3 on logits) or below 99.9% agreement at either size.
"""
import argparse
import sys

import mmcv
import numpy as np

from mmseg_ssanet.apis import load_segmentor, read_image
from mmseg_ssanet.apis.export import (export_onnx, preprocess,
                                      reference_logits, run_onnx)


def _size(text):
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected HxW, got {text!r}')
    if h < 32 or w < 32:
        raise argparse.ArgumentTypeError(f'HxW must be at least 32x32, got '
                                         f'{text!r}')
    return h, w


def compare(onnx_file, inputs, expected):
    got = run_onnx(onnx_file, inputs)
    expected = expected.numpy()
    return (float(np.abs(got - expected).max()),
            float((got.argmax(1) == expected.argmax(1)).mean()))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--image', required=True)
    parser.add_argument('--out', default='ssanet.onnx')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--atol', type=float, default=1e-3)
    parser.add_argument('--check-size', type=_size,
                        help='second input size HxW to check (default: 3/4 '
                        'of the height, 5/4 of the width)')
    args = parser.parse_args(argv)
    try:
        model = load_segmentor(args.config, args.checkpoint, 'cpu')
        image = read_image(args.image)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
    inputs, expected = export_onnx(model, image, args.out, args.opset)
    h, w = image.shape[:2]
    second = args.check_size or (max(32, h * 3 // 4), max(32, w * 5 // 4))
    other = preprocess(model, mmcv.imresize(image, second[::-1]))
    print(f'exported {args.out} (opset {args.opset}, dynamic height and '
          f'width, traced at {h}x{w})')
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
