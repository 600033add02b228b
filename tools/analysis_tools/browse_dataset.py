"""Write a config's training samples, as the pipeline delivers them, with
their ground truth drawn (mmseg's browse_dataset, fixed).

Example::

    python tools/analysis_tools/browse_dataset.py \
        configs/demo/ssanet_mobilenetv2_cpu_synthetic-cityscapes.py \
        --out work_dirs/browse --max-images 8 --cfg-options \
        train_dataloader.dataset.data_root=data/synthetic_cityscapes

mmseg's ``tools/analysis_tools/browse_dataset.py`` fails on every config
with this stack: it hands the visualiser a non-contiguous image view
(``inputs.permute(1, 2, 0)``, then a channel flip that keeps that layout),
which OpenCV's drawing calls refuse (``Expected Ptr<cv::UMat> for argument
'img'``). This does the same with a contiguous image, writes PNGs (no
display needed) and stops after ``--max-images`` if given.
"""
import argparse
import os
import os.path as osp
import sys


def main(argv=None):
    from mmengine.config import Config

    from mmseg_ssanet.utils.argument_types import add_cfg_options
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'config', help='config whose train_dataloader '
        'to browse')
    parser.add_argument(
        '--out',
        default='work_dirs/browse_dataset',
        help='folder for the PNGs (default %(default)s)')
    parser.add_argument(
        '--max-images',
        type=int,
        default=None,
        help='stop after this many (default: all)')
    add_cfg_options(parser, 'train_dataloader.dataset.data_root=DIR')
    args = parser.parse_args(argv)

    import numpy as np
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS, VISUALIZERS
    from tqdm import tqdm
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    try:
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
    except FileNotFoundError as err:
        sys.exit(f'error: {err}')
    visualizer = VISUALIZERS.build(cfg.visualizer)
    visualizer.dataset_meta = dataset.metainfo
    os.makedirs(args.out, exist_ok=True)
    count = len(dataset) if args.max_images is None else min(
        len(dataset), args.max_images)
    for index in tqdm(range(count), desc='browse', unit='img'):
        item = dataset[index]
        # BGR CHW tensor -> contiguous RGB HWC array (OpenCV needs it so)
        img = np.ascontiguousarray(item['inputs'].permute(
            1, 2, 0).numpy()[..., ::-1])
        name = osp.basename(item['data_samples'].img_path)
        visualizer.add_datasample(
            name=name,
            image=img,
            data_sample=item['data_samples'].numpy(),
            draw_gt=True,
            draw_pred=False,
            show=False,
            out_file=osp.join(args.out,
                              osp.splitext(name)[0] + '.png'))
    print(f'{count} images written to {args.out}')


if __name__ == '__main__':
    main()
