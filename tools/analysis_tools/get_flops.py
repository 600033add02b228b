"""FLOPs and parameters of any mmseg config, SNL's sparse attention counted.

Example::

    python tools/analysis_tools/get_flops.py \
        configs/ssanet_r101_cityscapes.py --shape 1024 2048
    python tools/analysis_tools/get_flops.py \
        mmseg::pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-512x1024.py

mmseg's ``tools/analysis_tools/get_flops.py`` fails on every model with
mmengine 0.10.7 (it passes both ``input_shape`` and ``inputs`` to
``get_model_complexity_info``); this does the same job with mmengine's
``FlopAnalyzer`` directly, and counts the SNL operator (see
:mod:`mmseg_ssanet.utils.flops`). Like mmseg's tool it measures the
segmentor's tensor forward (backbone, neck, decode head; the auxiliary
head removed) on one image of ``--shape``, one multiply-add = one FLOP.
"""
import argparse
import sys

import torch


def build(config: str, cfg_options=None):
    from mmengine.config import Config
    from mmengine.hub import get_config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    # 'mmseg::fcn/...' names a config inside the installed package
    cfg = get_config(config) if '::' in config else Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    cfg.model.pop('pretrained', None)
    backbone = cfg.model.get('backbone', {})
    if isinstance(backbone.get('init_cfg'), dict):
        backbone.pop('init_cfg')  # no download for counting
    model = MODELS.build(cfg.model)
    if getattr(model, 'auxiliary_head', None) is not None:
        model.auxiliary_head = None
    from mmengine.model import revert_sync_batchnorm
    return revert_sync_batchnorm(model).eval()


def main(argv=None):
    from mmseg_ssanet.utils.argument_types import add_cfg_options
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='model config')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=[512, 1024],
        help='input H W (or one number for a square; '
        'default 512 1024)')
    add_cfg_options(parser)
    args = parser.parse_args(argv)
    if len(args.shape) not in (1, 2) or min(args.shape) < 32:
        sys.exit(f'error: --shape takes H [W], each >= 32, got {args.shape}')
    h, w = args.shape if len(args.shape) == 2 else args.shape * 2

    from mmengine.analysis import parameter_count
    from mmengine.analysis.print_helper import _format_size

    import mmseg_ssanet  # noqa: F401  (registers the SNL modules)
    from mmseg_ssanet.utils.flops import count_flops
    try:
        model = build(args.config, args.cfg_options)
    except FileNotFoundError as err:
        sys.exit(f'error: {err}')
    with torch.no_grad():
        flops, skipped = count_flops(model, (torch.rand(1, 3, h, w), ))
    params = parameter_count(model)['']
    print(f'input 1x3x{h}x{w}\nFLOPs: {_format_size(flops)} ({flops})\n'
          f'params: {_format_size(params)} ({params})')
    if skipped:
        print('not counted (no FLOP handle): ' +
              ', '.join(f'{name} x{n}' for name, n in sorted(skipped.items())))


if __name__ == '__main__':
    main()
