"""Export a trained SSANet to ONNX and check it against PyTorch.

The SNL blocks switch to the operator's ``reference`` backend
(``grid_sample``, ONNX ``GridSample`` from opset 16); the fast CSR path has
no ONNX equivalent. The exported graph maps a normalised image tensor
``[1, 3, H, W]`` (after mmseg's data preprocessor) to class logits at the
input size.
"""
from typing import Tuple

import numpy as np
import torch
from torch import nn

from ..models import SparseNonLocal2d


class _EncodeDecode(nn.Module):

    def __init__(self, model, shape: Tuple[int, int]):
        super().__init__()
        self.model = model
        self.meta = [dict(img_shape=shape, pad_shape=shape, ori_shape=shape)]

    def forward(self, inputs):
        return self.model.encode_decode(inputs, self.meta)


def preprocess(model, image: np.ndarray) -> torch.Tensor:
    """BGR image -> the normalised tensor the model sees (no resize)."""
    tensor = torch.from_numpy(np.ascontiguousarray(
        image.transpose(2, 0, 1))).float()
    data = model.data_preprocessor(dict(inputs=[tensor]), False)
    return data['inputs']


def export_onnx(model, image: np.ndarray, out_file: str, opset: int = 17):
    """Export ``model`` for ``image``'s size; return (inputs, torch logits)."""
    if opset < 16:
        raise ValueError(f'opset must be >= 16 (GridSample), got {opset}')
    for block in model.modules():
        if isinstance(block, SparseNonLocal2d):
            block.backend = 'reference'
    model.eval()
    inputs = preprocess(model, image)
    wrapper = _EncodeDecode(model, tuple(inputs.shape[2:]))
    with torch.no_grad():
        expected = wrapper(inputs)
        torch.onnx.export(wrapper, (inputs, ), out_file, opset_version=opset,
                          input_names=['inputs'], output_names=['logits'],
                          dynamo=False)
    return inputs, expected


def run_onnx(onnx_file: str, inputs: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort
    session = ort.InferenceSession(onnx_file,
                                   providers=['CPUExecutionProvider'])
    return session.run(None, {'inputs': inputs.numpy()})[0]
