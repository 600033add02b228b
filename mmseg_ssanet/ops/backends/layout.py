"""Memory layouts the fused kernels read and write: pixels as rows of
channels (channels_last), which 1x1 convs produce for free."""
import torch
from torch import Tensor


def pixel_rows(x: Tensor) -> Tensor:
    """``[B, C, H, W]`` -> contiguous ``[B*H*W, C]``: a view for
    channels_last input."""
    B, C, H, W = x.shape
    return x.permute(0, 2, 3, 1).reshape(B * H * W, C).contiguous()


def unit_channel_stride(x: Tensor) -> Tensor:
    """``x`` itself where each pixel's channels are contiguous (channels_last
    input, or a channel slice of one), else a channels_last copy."""
    return x if x.stride(1) == 1 or x.shape[1] <= 1 else \
        x.contiguous(memory_format=torch.channels_last)


def channels_last_like(x: Tensor, channels: int, dtype=None) -> Tensor:
    """An empty ``[B, channels, H, W]`` tensor laid out channels_last, as
    the kernels write their outputs and gradients."""
    B, _, H, W = x.shape
    return x.new_empty(B, H, W, channels, dtype=dtype).permute(0, 3, 1, 2)
