"""Export a trained SSANet to ONNX and check it against PyTorch.

The SNL blocks switch to the operator's ``reference`` backend
(``grid_sample``, ONNX ``GridSample`` from opset 16); the fused kernels
have no ONNX equivalent. The exported graph maps a normalised image tensor
``[1, 3, H, W]`` (after mmseg's data preprocessor) to class logits at the
input size, for any H and W (dynamic axes).
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

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
        return F.interpolate(logits, size=inputs.shape[2:], mode='bilinear',
                             align_corners=self.model.decode_head.align_corners)


def preprocess(model, image: np.ndarray) -> torch.Tensor:
    """BGR image -> the normalised tensor the model sees (no resize)."""
    tensor = torch.from_numpy(np.ascontiguousarray(
        image.transpose(2, 0, 1))).float()
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
        torch.onnx.export(wrapper, (inputs, ), out_file, opset_version=opset,
                          input_names=['inputs'], output_names=['logits'],
                          dynamic_axes=dict(inputs=size, logits=size),
                          dynamo=False)
    return inputs, reference_logits(model, inputs)


def run_onnx(onnx_file: str, inputs: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort
    session = ort.InferenceSession(onnx_file,
                                   providers=['CPUExecutionProvider'])
    return session.run(None, {'inputs': inputs.numpy()})[0]
