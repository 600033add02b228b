"""Segment images with an exported graph (onnxruntime); write overlays.

Example::

    python tools/deployment/onnx_infer.py \
        configs/demo/ssanet_mobilenetv2_cpu_synthetic-cityscapes.py \
        work_dirs/demo/ssanet.onnx \
        data/synthetic_cityscapes/leftImg8bit/val/frankfurt \
        --out work_dirs/demo/onnx_overlays

The graph is what ``tools/deployment/export_onnx.py`` writes. Each image
gets the config's test-time preprocessing (its ``Resize`` step, BGR to
RGB, mean and std), one whole-image run of the graph, logits resized back
to the image and the arg-max blended over it in the palette's colours as
``tools/visualization/infer.py`` blends it (palette from the graph's
metadata; without infer.py's class-name captions, since mmseg's visualizer
imports mmcv's compiled ops). Needs onnxruntime, torch, mmengine and
mmcv's Python part (mmcv-lite will do); not mmcv's compiled ops, mmseg, nor
this plugin's package. A graph whose input does not
fit the config (channels, a fixed size, the normalisation, the number of
classes) is refused before any image is read.
"""
import argparse
import json
import os
import os.path as osp
import sys

import numpy as np

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')


class GraphMismatch(ValueError):
    """The graph does not fit the config."""


def _step(pipeline, name):
    return next((t for t in pipeline if t['type'] == name), None)


class OnnxSegmentor:
    """An exported SSANet graph with its config's preprocessing."""

    def __init__(self, config, onnx_file, cfg_options=None, threads=None):
        import onnxruntime as ort
        from mmengine.config import Config
        if not osp.isfile(onnx_file):
            raise FileNotFoundError(f'graph {onnx_file!r} does not exist')
        # the config's custom_imports would import the plugin (and with it
        # mmcv's compiled ops): only its values are read here
        if not osp.isfile(config):
            raise FileNotFoundError(f'config {config!r} does not exist')
        try:
            cfg = Config.fromfile(config, import_custom_modules=False)
        except Exception as err:  # SyntaxError, a missing base, ...
            raise ValueError(f'config {config!r} cannot be read: '
                             f'{type(err).__name__}: {err}') from err
        if 'model' not in cfg:
            raise ValueError(f'config {config!r} defines no model')
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        pre = cfg.model.data_preprocessor
        self.mean = np.array(pre.get('mean', [0, 0, 0]), np.float32)
        self.std = np.array(pre.get('std', [1, 1, 1]), np.float32)
        self.bgr_to_rgb = bool(pre.get('bgr_to_rgb', False))
        self.resize = _step(cfg.test_dataloader.dataset.pipeline, 'Resize')
        self.align_corners = cfg.model.decode_head.get('align_corners', False)
        # the memory pattern off, as mmseg_ssanet.apis.export's
        # session_options (not imported: it needs the plugin): with it on,
        # onnxruntime keeps one block sized for every intermediate of a run
        options = ort.SessionOptions()
        options.enable_mem_pattern = False
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(
                onnx_file, options, providers=['CPUExecutionProvider'])
        except Exception as err:  # onnxruntime's own (protobuf) errors
            first = str(err).splitlines()[0][:200]
            raise ValueError(
                f'graph {onnx_file!r} cannot be loaded: '
                f'truncated, or not an ONNX file ({first})') from err
        meta = {
            k[len('mmseg_ssanet.'):]: json.loads(v)
            for k, v in
            self.session.get_modelmeta().custom_metadata_map.items()
            if k.startswith('mmseg_ssanet.')
        }
        self.classes = meta.get('classes')
        self.palette = meta.get('palette')
        self._check(cfg, meta, onnx_file, config)

    def _check(self, cfg, meta, onnx_file, config):
        where = f'graph {onnx_file!r} and config {config!r}'
        (graph_in, ) = self.session.get_inputs()
        shape = graph_in.shape
        if len(shape) != 4 or shape[1] != len(self.mean):
            raise GraphMismatch(
                f'{where}: the graph takes {shape}, the config '
                f'[N, {len(self.mean)}, H, W] images')
        for key, ours in (('mean', self.mean), ('std', self.std)):
            if key in meta and not np.allclose(meta[key], ours):
                raise GraphMismatch(
                    f'{where}: exported with {key} {meta[key]}, the config '
                    f'normalises with {ours.tolist()}')
        if 'bgr_to_rgb' in meta and meta['bgr_to_rgb'] != self.bgr_to_rgb:
            raise GraphMismatch(f'{where}: bgr_to_rgb differs')
        classes = cfg.model.decode_head.num_classes
        out = self.session.get_outputs()[0].shape
        if isinstance(out[1], int) and out[1] != classes:
            raise GraphMismatch(
                f'{where}: the graph has {out[1]} classes, the config has '
                f'{classes}')
        if self.classes is not None and len(self.classes) != classes:
            raise GraphMismatch(
                f'{where}: the graph names {len(self.classes)} classes, '
                f'the config has {classes}')
        self.fixed_size = tuple(shape[2:]) if all(
            isinstance(d, int) for d in shape[2:]) else None

    def preprocess(self, image):
        """BGR uint8 image -> the graph's ``[1, 3, h, w]`` float32 input."""
        import mmcv
        if self.resize is not None:
            scale = self.resize['scale']
            image = (
                mmcv.imrescale(image, scale) if self.resize.get(
                    'keep_ratio', False) else mmcv.imresize(image, scale))
        if self.fixed_size and image.shape[:2] != self.fixed_size:
            raise GraphMismatch(
                f'the graph takes {self.fixed_size} images, the config\'s '
                f'preprocessing gives {image.shape[:2]}')
        x = image[..., ::-1] if self.bgr_to_rgb else image
        x = (x.astype(np.float32) - self.mean) / self.std
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None])

    def predict(self, image):
        """The class of every pixel of ``image`` (BGR), ``[H, W]``."""
        import torch
        import torch.nn.functional as F
        logits = self.session.run(
            None,
            {self.session.get_inputs()[0].name: self.preprocess(image)})[0]
        # as mmseg's postprocess_result: logits resized, then arg-max
        logits = F.interpolate(
            torch.from_numpy(logits),
            size=image.shape[:2],
            mode='bilinear',
            align_corners=self.align_corners)
        return logits[0].argmax(0).numpy()


def draw(segmentor, image, labels, out_file, opacity):
    """The prediction blended over the image with the palette's colours, as
    infer.py's visualizer blends it (without its class-name captions:
    mmseg's visualizer imports mmcv's compiled ops)."""
    import cv2
    n = int(labels.max()) + 1
    palette = np.array(segmentor.palette or [[(37 * i) % 256, (91 * i) % 256,
                                              (173 * i) % 256]
                                             for i in range(n)],
                       np.float32)  # RGB
    colour = palette[labels][..., ::-1]  # BGR, as the image
    blended = image * (1 - opacity) + colour * opacity
    cv2.imwrite(out_file, blended.astype(np.uint8))


def collect(inputs):
    """Image files from files and folders (the plugin's collect_images,
    written out: this tool must run where the plugin cannot be imported)."""
    found = []
    for item in inputs:
        if osp.isdir(item):
            found += sorted(
                osp.join(item, f) for f in os.listdir(item)
                if f.lower().endswith(IMAGE_EXTENSIONS))
        elif osp.isfile(item):
            found.append(item)
        else:
            raise FileNotFoundError(f'no image or folder at {item!r}')
    if not found:
        raise FileNotFoundError(f'no images in {list(inputs)!r}')
    return found


def main(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'config',
        help='the config the graph was exported '
        'from (its test preprocessing is applied)')
    parser.add_argument('onnx', help='the graph (export_onnx.py --out)')
    parser.add_argument('inputs', nargs='+', help='image files or folders')
    parser.add_argument(
        '--out',
        default='work_dirs/onnx_overlays',
        help='folder for the overlays (default %(default)s)')
    parser.add_argument(
        '--opacity',
        type=float,
        default=0.5,
        help='opacity of the prediction overlay (default '
        '%(default)s)')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='onnxruntime intra-op threads (default: its '
        'own choice)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='config overrides, as for mim '
        'train/test')
    args = parser.parse_args(argv)
    import mmcv
    try:
        images = collect(args.inputs)
        segmentor = OnnxSegmentor(args.config, args.onnx, args.cfg_options,
                                  args.threads)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
    os.makedirs(args.out, exist_ok=True)
    skipped = 0
    for path in images:
        image = mmcv.imread(path)
        if image is None or image.size == 0:
            print(f'  skipped {path}: not an image file')
            skipped += 1
            continue
        out_file = osp.join(args.out,
                            osp.splitext(osp.basename(path))[0] + '.png')
        draw(segmentor, image, segmentor.predict(image), out_file,
             args.opacity)
    print(f'{len(images) - skipped} overlays written to {args.out}; '
          f'{skipped} of {len(images)} images skipped')
    if skipped:
        sys.exit(1)


if __name__ == '__main__':
    main()
