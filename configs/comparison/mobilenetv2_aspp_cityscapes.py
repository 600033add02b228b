# Table 2: the baseline with mmseg's ASPP (DeepLabV3), rates for stride 16.
_base_ = ['../ablation/mobilenetv2_fcn-baseline_cityscapes.py']
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    decode_head=dict(
        _delete_=True, type='ASPPHead', dilations=(1, 6, 12, 18),
        in_channels=320, in_index=3, channels=256, dropout_ratio=0.1,
        num_classes=19, norm_cfg=norm_cfg, align_corners=True,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                         loss_weight=1.0)))
