"""The SSANet decoder (Sec. 3.3 and Fig. 2 of the paper)."""
from typing import Optional, Sequence

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module()
class SSANetDecoder(BaseModule):
    """Upsample the encoder output, concatenate the low-level features, fuse.

    "Output features of the encoder part are first upsampled, and then
    concatenated with the reduced low-level features from stage 2 in the
    backbone. After the concatenation, two 3x3 convolutions are used to fuse
    features before the final 1x1 classifier." The classifier is the decode
    head's ``conv_seg``. The decoder owns the low-level input (which
    backbone output, its channels, their reduction by a 1x1 conv), as
    mmseg's DeepLabV3+ head owns ``c1_in_channels`` / ``c1_channels``: the
    paper gives no reduced width; 48 follows DeepLabV3+.

    Args:
        in_channels (int): Channels of the encoder output.
        channels (int): Output channels of the fusing convs.
        low_level_in_channels (int): Channels of the low-level backbone
            output (stride 4: ResNet's res2 256, MobileNetV2's stage 24).
        low_level_channels (int): Its channels after the 1x1 reduction.
            Default: 48.
        low_level_index (int): Which backbone output is the low-level one.
            Default: 0.
        num_convs (int): Fusing 3x3 convs. Paper: 2.
        conv_cfg, norm_cfg, act_cfg: For the reduction and fusing convs.
        align_corners (bool): For the upsampling.
    """

    def __init__(self,
                 in_channels: int,
                 channels: int,
                 low_level_in_channels: int,
                 low_level_channels: int = 48,
                 low_level_index: int = 0,
                 num_convs: int = 2,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 align_corners: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        if num_convs < 1:
            raise ValueError(f'num_convs must be >= 1, got {num_convs}')
        self.in_channels = in_channels
        self.low_level_in_channels = low_level_in_channels
        self.low_level_index = low_level_index
        self.channels = channels
        self.align_corners = align_corners
        conv = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.reduce = ConvModule(low_level_in_channels, low_level_channels, 1,
                                 **conv)
        self.fuse = nn.Sequential(*[
            ConvModule(
                in_channels + low_level_channels if i == 0 else channels,
                channels,
                3,
                padding=1,
                **conv) for i in range(num_convs)
        ])

    def forward(self, x: Tensor, inputs: Sequence[Tensor]) -> Tensor:
        """``x``: the encoder output; ``inputs``: the backbone outputs."""
        if not -len(inputs) <= self.low_level_index < len(inputs):
            raise ValueError(
                f'SSANetDecoder: low_level_index {self.low_level_index} is '
                f'out of range for {len(inputs)} backbone outputs')
        low_level = inputs[self.low_level_index]
        if low_level.shape[1] != self.low_level_in_channels:
            raise ValueError(
                f'SSANetDecoder expects backbone output '
                f'{self.low_level_index} (low_level_index) with '
                f'{self.low_level_in_channels} channels '
                f'(low_level_in_channels), got {low_level.shape[1]}: check '
                f'them against the backbone\'s out_indices')
        low_level = self.reduce(low_level)
        x = resize(
            x,
            size=low_level.shape[2:],
            mode='bilinear',
            align_corners=self.align_corners)
        return self.fuse(torch.cat([x, low_level], dim=1))
