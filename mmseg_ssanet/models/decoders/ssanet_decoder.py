"""The SSANet decoder (Sec. 3.3 and Fig. 2 of the paper)."""
from typing import Optional

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
    head's ``conv_seg``; the low-level reduction is :class:`LowLevelNeck`.

    Args:
        in_channels (int): Channels of the encoder output.
        low_level_channels (int): Channels of the reduced low-level features
            (48, as DeepLabV3+).
        channels (int): Output channels of the fusing convs.
        num_convs (int): Fusing 3x3 convs. Paper: 2.
        conv_cfg, norm_cfg, act_cfg: For the fusing convs.
        align_corners (bool): For the upsampling.
    """

    def __init__(self,
                 in_channels: int,
                 channels: int,
                 low_level_channels: int = 48,
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
        self.low_level_channels = low_level_channels
        self.channels = channels
        self.align_corners = align_corners
        self.fuse = nn.Sequential(*[
            ConvModule(in_channels + low_level_channels if i == 0 else
                       channels, channels, 3, padding=1, conv_cfg=conv_cfg,
                       norm_cfg=norm_cfg, act_cfg=act_cfg)
            for i in range(num_convs)])

    def forward(self, x: Tensor, low_level: Tensor) -> Tensor:
        if low_level.shape[1] != self.low_level_channels:
            raise ValueError(
                f'SSANetDecoder expects low-level features with '
                f'{self.low_level_channels} channels (low_level_channels), '
                f'got {low_level.shape[1]}: is LowLevelNeck in the model, '
                f'with out_channels={self.low_level_channels}?')
        x = resize(x, size=low_level.shape[2:], mode='bilinear',
                   align_corners=self.align_corners)
        return self.fuse(torch.cat([x, low_level], dim=1))
