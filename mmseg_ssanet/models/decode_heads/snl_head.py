"""SNLHead: the encoder head of SSANet (Sec. 3.3 and Fig. 2 of the paper)."""
from typing import Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch import Tensor, nn

from ..blocks import SparseNonLocal2d


@MODELS.register_module()
class SNLHead(BaseDecodeHead):
    """Sparse spatial attention head (SSANet).

    This head is the implementation of `SSANet
    <https://arxiv.org/abs/2109.01915>`_ (Fig. 2): a 3x3 conv reduces the
    backbone's last feature map to ``channels`` (512 on ResNet-101, 256 on
    MobileNetV2), the sparse non-local block (eqs. 4-7) runs on it, a global
    average pooling branch of the reduced features is concatenated with its
    output, and the decoder (with the low-level features) or, without one,
    the classifier follows. Each part can be switched off for the paper's
    ablation (Table 1): with neither SNL, pooling nor decoder this is the
    FCN baseline (reduce conv + classifier).

    Where the paper is silent, mmseg's DeepLabV3+ conventions are used: the
    pooled branch is a 1x1 ConvModule, the concatenation is fused back to
    ``channels`` by a 3x3 ConvModule (as ``ASPPHead``'s bottleneck), norm and
    activation follow ``norm_cfg`` / ``act_cfg``, dropout precedes the
    classifier.

    Args:
        num_samples (int): K, sampled keys per query (the paper: 81 on
            Cityscapes, 49 on ADE20K and PASCAL Context).
        kernel_size (int | tuple[int, int], optional): The initial sampling
            grid, instead of ``num_samples``.
        snl_reduction (int): theta/phi channels = channels // snl_reduction.
        snl_dilation (int): Spacing of the initial sampling grid.
        use_scale (bool): Scale SNL logits by 1/sqrt(C'). Paper: no.
        snl_backend (str, optional): The SNL operator's backend; None
            (default) picks by device (see :class:`SparseNonLocal2d`).
        with_snl (bool): Use the SNL block. Default: True.
        with_global_pool (bool): Use the global pooling branch. Default: True.
        decoder (dict, optional): Config of the decoder, e.g.
            ``dict(type='SSANetDecoder', low_level_in_channels=256)``; it
            reads the backbone outputs for its low-level input; its
            ``in_channels``, ``channels``, norm, activation and
            ``align_corners`` default to the head's.
    """

    def __init__(self,
                 num_samples: int = 81,
                 kernel_size: Union[int, Tuple[int, int], None] = None,
                 snl_reduction: int = 2,
                 snl_dilation: int = 1,
                 use_scale: bool = False,
                 snl_backend: Optional[str] = None,
                 with_snl: bool = True,
                 with_global_pool: bool = True,
                 decoder: Optional[dict] = None,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(self.in_channels, (list, tuple)):
            raise ValueError('SNLHead reads one feature map: give in_index '
                             'and in_channels as ints (the decoder takes '
                             'its low-level input by its low_level_index)')
        conv = dict(
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)
        self.reduce = ConvModule(
            self.in_channels, self.channels, 3, padding=1, **conv)
        self.snl = SparseNonLocal2d(
            self.channels,
            reduction=snl_reduction,
            num_samples=num_samples,
            kernel_size=kernel_size,
            dilation=snl_dilation,
            use_scale=use_scale,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            backend=snl_backend) if with_snl else None
        self.global_pool = self.bottleneck = None
        if with_global_pool:
            self.global_pool = nn.Sequential(
                nn.AdaptiveAvgPool2d(1),
                ConvModule(self.channels, self.channels, 1, **conv))
            self.bottleneck = ConvModule(
                2 * self.channels, self.channels, 3, padding=1, **conv)
        self.decoder = None
        if decoder is not None:
            self.decoder = MODELS.build(
                decoder,
                default_args=dict(
                    in_channels=self.channels,
                    channels=self.channels,
                    align_corners=self.align_corners,
                    **conv))
            if self.decoder.channels != self.channels:
                raise ValueError(
                    f'decoder.channels ({self.decoder.channels}) must equal '
                    f'the head\'s channels ({self.channels}), which the '
                    f'classifier reads')

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'SNLHead expects inputs[{self.in_index}] with '
                f'{self.in_channels} channels (in_channels), got shape '
                f'{tuple(x.shape)}: check in_index / in_channels against the '
                f'backbone\'s out_indices')

    def _check_batch(self, x: Tensor) -> None:
        """Batch norm after global pooling sees one value per channel and
        image: with one image per process torch refuses it in training
        ("Expected more than 1 value per channel"). Said here, with the fix.
        SyncBN across processes pools the batch over all of them."""
        if not (self.training and x.shape[0] == 1
                and self.global_pool is not None):
            return
        norm = self.global_pool[1].norm if self.global_pool[1].with_norm \
            else None
        if isinstance(norm, nn.modules.batchnorm._BatchNorm) and \
                not isinstance(norm, nn.SyncBatchNorm):
            raise ValueError(
                'SNLHead: training with 1 image per process, but the global '
                'pooling branch normalises a 1x1 map with BatchNorm, which '
                'needs more than one value per channel. Train with at least '
                '2 images per process (train_dataloader.batch_size=2), or '
                'across processes with SyncBN, or give the head a norm that '
                'works per image (norm_cfg=dict(type=\'GN\', num_groups=32, '
                'requires_grad=True)), or drop the branch '
                '(with_global_pool=False)')

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        x = self._transform_inputs(inputs)
        self._check_input(x)
        self._check_batch(x)
        reduced = self.reduce(x)
        out = self.snl(reduced) if self.snl is not None else reduced
        if self.global_pool is not None:
            pooled = resize(
                self.global_pool(reduced),
                size=out.shape[2:],
                mode='bilinear',
                align_corners=self.align_corners)
            out = self.bottleneck(torch.cat([out, pooled], dim=1))
        if self.decoder is not None:
            out = self.decoder(out, inputs)
        return self.cls_seg(out)
