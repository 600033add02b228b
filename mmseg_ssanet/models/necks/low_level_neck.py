"""LowLevelNeck: reduce the stride-4 features for the SSANet decoder."""
from typing import Optional, Sequence, Tuple

from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class LowLevelNeck(BaseModule):
    """Reduce one backbone stage with a 1x1 conv; pass the others unchanged.

    SSANet's decoder concatenates "the reduced low-level features from stage
    2" (stride 4: ResNet's res2, MobileNetV2's 24-channel stage). The paper
    does not give their width; 48 channels follows DeepLabV3+. The other
    stages pass through, so an auxiliary FCN head still reads stage 3.

    Args:
        in_channels (Sequence[int]): Channels of each backbone output.
        low_level_index (int): The output to reduce. Default: 0.
        out_channels (int): Its channels after reduction. Default: 48.
        conv_cfg, norm_cfg, act_cfg: For the 1x1 conv.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 low_level_index: int = 0,
                 out_channels: int = 48,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        self.in_channels = list(in_channels)
        if not -len(self.in_channels) <= low_level_index < len(
                self.in_channels):
            raise ValueError(f'low_level_index {low_level_index} is out of '
                             f'range for {len(self.in_channels)} inputs')
        self.low_level_index = low_level_index % len(self.in_channels)
        self.out_channels = out_channels
        self.reduce = ConvModule(self.in_channels[self.low_level_index],
                                 out_channels, 1, conv_cfg=conv_cfg,
                                 norm_cfg=norm_cfg, act_cfg=act_cfg)

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        channels = [x.shape[1] for x in inputs]
        if channels != self.in_channels:
            raise ValueError(f'LowLevelNeck expects inputs with channels '
                             f'{self.in_channels} (in_channels), got '
                             f'{channels}')
        outs = list(inputs)
        outs[self.low_level_index] = self.reduce(inputs[self.low_level_index])
        return tuple(outs)
