"""Export a trained SSANet to ONNX and check it against PyTorch.

The SNL blocks switch to the operator's ``reference`` backend, which
exports the sparse attention one sampling point at a time (ONNX
``GridSample`` from opset 16, standard operators only, no intermediate
larger than ``[B, C, H, W]``); the fused kernels have no ONNX equivalent.
The exported graph maps a normalised image tensor ``[1, 3, H, W]`` (after
mmseg's data preprocessor) to class logits at the input size, for any H
and W (dynamic axes).
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..features import onnx_export_options
from ..models import SparseNonLocal2d


class _EncodeDecode(nn.Module):
    """``encode_decode`` with the output size taken from the input itself:
    mmseg's reads it from the image metas, which would freeze the size in
    the graph."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs):
        logits = self.model.decode_head(self.model.extract_feat(inputs))
        return F.interpolate(
            logits,
            size=inputs.shape[2:],
            mode='bilinear',
            align_corners=self.model.decode_head.align_corners)


def preprocess(model, image: np.ndarray) -> torch.Tensor:
    """BGR image -> the normalised tensor the model sees (no resize)."""
    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(
        2, 0, 1))).float()
    data = model.data_preprocessor(dict(inputs=[tensor]), False)
    return data['inputs']


def reference_logits(model, inputs: torch.Tensor) -> torch.Tensor:
    """mmseg's own ``encode_decode`` on ``inputs``: what ONNX must match."""
    shape = tuple(inputs.shape[2:])
    meta = [dict(img_shape=shape, pad_shape=shape, ori_shape=shape)]
    with torch.no_grad():
        return model.encode_decode(inputs, meta)


def export_onnx(model, image: np.ndarray, out_file: str, opset: int = 17):
    """Export ``model`` with dynamic height and width, traced at
    ``image``'s size; return (inputs, torch logits) for that image."""
    if opset < 16:
        raise ValueError(f'opset must be >= 16 (GridSample), got {opset}')
    for block in model.modules():
        if isinstance(block, SparseNonLocal2d):
            block.backend = 'reference'
    model.eval()
    inputs = preprocess(model, image)
    # eval: the exporter restores the wrapper's mode afterwards, and a new
    # module is in training mode
    wrapper = _EncodeDecode(model).eval()
    size = {2: 'height', 3: 'width'}
    with torch.no_grad():
        torch.onnx.export(
            wrapper, (inputs, ),
            out_file,
            opset_version=opset,
            input_names=['inputs'],
            output_names=['logits'],
            dynamic_axes=dict(inputs=size, logits=size),
            **onnx_export_options())
    _add_metadata(out_file, model)
    return inputs, reference_logits(model, inputs)


def _add_metadata(out_file: str, model) -> None:
    """What running the graph on images needs besides it, as ONNX metadata
    (``tools/deployment/onnx_infer.py`` reads it): class names, palette
    and the data preprocessor's normalisation."""
    import json

    import onnx
    graph = onnx.load(out_file)
    pre = model.data_preprocessor
    dataset = getattr(model, 'dataset_meta', None) or {}
    meta = dict(
        mean=pre.mean.flatten().tolist(),
        std=pre.std.flatten().tolist(),
        bgr_to_rgb=bool(pre.channel_conversion))
    if 'classes' in dataset and 'palette' in dataset:
        meta.update(
            classes=list(dataset['classes']),
            palette=[list(map(int, c)) for c in dataset['palette']])
    for key, value in meta.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = f'mmseg_ssanet.{key}', json.dumps(value)
    onnx.save(graph, out_file)


def session_options(threads: int = 0):
    """onnxruntime options for these graphs: the memory pattern off.

    With it on (the default) onnxruntime plans one block for every
    intermediate of a run at its input size and keeps it: R101 at
    1024x2048 peaked at 3.26 GB against PyTorch eager's 2.38 GB; off, 1.86
    GB, and no slower (docs/tools.md, ``benchmark_onnx.py``).
    """
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.enable_mem_pattern = False
    if threads:
        options.intra_op_num_threads = threads
    return options


def run_onnx(onnx_file: str, inputs: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort
    session = ort.InferenceSession(
        onnx_file, session_options(), providers=['CPUExecutionProvider'])
    return session.run(None, {'inputs': inputs.numpy()})[0]


def check_graph(onnx_file: str,
                height: int,
                width: int,
                scope: str = '') -> dict:
    """``onnx.checker`` with full checks on the file, then shapes inferred
    for a ``[1, 3, height, width]`` input: the operator domains used and
    the largest intermediate tensor (name, shape, elements) among those
    whose name starts with ``scope`` (e.g. ``/decode_head/snl/``)."""
    import onnx
    model = onnx.load(onnx_file)
    onnx.checker.check_model(model, full_check=True)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, value in zip(dims, (1, 3, height, width)):
        dim.ClearField('dim_param')
        dim.dim_value = value
    inferred = onnx.shape_inference.infer_shapes(
        model, strict_mode=True, data_prop=True)
    largest = ('', (), 0)
    unknown = []
    for info in inferred.graph.value_info:
        if not info.name.startswith(scope):
            continue
        shape = tuple(
            d.dim_value if d.HasField('dim_value') else None
            for d in info.type.tensor_type.shape.dim)
        if None in shape:
            unknown.append(info.name)
            continue
        numel = int(np.prod(shape)) if shape else 1
        if numel > largest[2]:
            largest = (info.name, shape, numel)
    return dict(
        domains=sorted({n.domain or 'ai.onnx'
                        for n in model.graph.node}),
        ops=sorted({n.op_type
                    for n in model.graph.node}),
        largest=largest,
        unknown_shapes=unknown,
        nodes=len(model.graph.node))
