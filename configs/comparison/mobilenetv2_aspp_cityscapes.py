# Table 2: the baseline with mmseg's ASPP (DeepLabV3), rates for stride 16.
# Everything but the head as the SSANet config; the head is another type,
# so it replaces SNLHead whole (_delete_), at the same width and norm.
_base_ = ['../ssanet_mobilenetv2_cityscapes.py']
model = dict(
    decode_head=dict(
        _delete_=True,
        type='ASPPHead',
        dilations=(1, 6, 12, 18),
        in_channels=320,
        in_index=3,
        channels=256,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg={{_base_.norm_cfg}},
        align_corners=True,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
# No SNL block: nothing for the SNL statistics hook to log.
custom_hooks = []
