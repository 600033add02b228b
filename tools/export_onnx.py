"""Export a trained SSANet to ONNX; check onnxruntime against PyTorch.

Example::

    python tools/export_onnx.py configs/demo/ssanet_mobilenetv2_cpu_synthetic-cityscapes.py \
        work_dirs/demo/iter_400.pth --image IMAGE --out work_dirs/demo/ssanet.onnx

The graph is exported at the test image's size after the config's test
resize; the check runs both on that image and reports the largest logit
difference and the share of pixels with the same predicted class. It fails
above ``--atol`` (default 1e-3 on logits) or below 99.9% agreement.
"""
import argparse
import sys

import numpy as np

from mmseg_ssanet.apis import load_segmentor, read_image
from mmseg_ssanet.apis.export import export_onnx, run_onnx


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--image', required=True)
    parser.add_argument('--out', default='ssanet.onnx')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--atol', type=float, default=1e-3)
    args = parser.parse_args(argv)
    try:
        model = load_segmentor(args.config, args.checkpoint, 'cpu')
        image = read_image(args.image)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
    inputs, expected = export_onnx(model, image, args.out, args.opset)
    got = run_onnx(args.out, inputs)
    expected = expected.numpy()
    max_diff = float(np.abs(got - expected).max())
    agree = float((got.argmax(1) == expected.argmax(1)).mean())
    print(f'exported {args.out} (opset {args.opset}, input '
          f'{tuple(inputs.shape)}); onnxruntime vs PyTorch: max |logit '
          f'diff| {max_diff:.2e}, same class on {100 * agree:.3f}% of '
          f'pixels')
    if max_diff > args.atol or agree < 0.999:
        sys.exit('error: onnxruntime output differs from PyTorch beyond '
                 'the tolerance')


if __name__ == '__main__':
    main()
