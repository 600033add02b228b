"""The SNL operator and dense attention on generated inputs, as the GPU
tools time them side by side."""
from typing import Callable, Dict, List, Sequence

import torch

from .baselines import sdpa_attention


def attention_inputs(batch: int,
                     channels: Sequence[int],
                     size: Sequence[int],
                     num_points: int,
                     dtype: torch.dtype,
                     device,
                     seed: int = 0) -> List[torch.Tensor]:
    """Query, key, value and offsets of the operator, channels last.

    Query, key and value are standard normal in ``dtype``; the offsets (a
    few pixels) in at least float32, as the block computes them: offsets
    rounded to 8 bits put points exactly on pixel lines, where the offset
    gradient is one-sided and ``grid_sample``'s rounding may pick the other
    side.

    Args:
        batch (int): images.
        channels (Sequence[int]): query/key channels, value channels.
        size (Sequence[int]): the map, ``(H, W)``.
        num_points (int): sampling points K.
        dtype (torch.dtype): of query, key and value.
        device (str | torch.device): where the tensors are.
        seed (int): of the generator (the same inputs on every device).
    """
    g = torch.Generator().manual_seed(seed)
    (cq, c), (h, w) = channels, size
    q, k = (torch.randn(batch, cq, h, w, generator=g) for _ in range(2))
    v = torch.randn(batch, c, h, w, generator=g)
    offsets = torch.randn(batch, 2 * num_points, h, w, generator=g) * 2
    offset_dtype = torch.promote_types(dtype, torch.float32)
    return [
        x.to(device, t).contiguous(memory_format=torch.channels_last)
        for x, t in ((q, dtype), (k, dtype), (v, dtype), (offsets,
                                                          offset_dtype))
    ]


def attention_passes(
    fn: Callable,
    inputs: Sequence[torch.Tensor],
    names=('forward', 'forward_backward')
) -> Dict[str, Callable]:
    """The passes of an attention call ``fn(q, k, v, offsets)``:
    ``forward`` without autograd, ``forward_backward`` with the gradients
    of all four inputs; ``names`` picks which."""
    xs = [x.detach().requires_grad_() for x in inputs]

    def forward():
        with torch.no_grad():
            fn(*inputs)

    def forward_backward():
        fn(*xs).float().sum().backward()

    found = {'forward': forward, 'forward_backward': forward_backward}
    return {name: found[name] for name in names}


def dense_too_large(batch: int, size: Sequence[int], max_bytes: float) -> str:
    """Why dense attention is not run at this size (its N x N float32
    matrix over ``max_bytes``), or ''."""
    n = size[0] * size[1]
    need = n * n * batch * 4
    return f'N x N matrix {need:.3g} B > --max-dense-bytes' \
        if need > max_bytes else ''


def first_sdpa_backend(q, k, v) -> str:
    """The first backend of ``F.scaled_dot_product_attention``, in torch's
    order, that takes these inputs (``none`` if no backend does)."""
    from ..features import sdpa_backend
    for backend in ('FLASH_ATTENTION', 'EFFICIENT_ATTENTION',
                    'CUDNN_ATTENTION', 'MATH'):
        try:
            with sdpa_backend(backend):
                sdpa_attention(q, k, v, scale=1.0)
            return backend
        except (RuntimeError, AttributeError):  # AttributeError: no such
            continue
    return 'none'
