# Table 2: the baseline with mmseg's dense non-local block (NLHead).
_base_ = ['../ablation/mobilenetv2_fcn-baseline_cityscapes.py']
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    decode_head=dict(
        _delete_=True, type='NLHead', reduction=2, use_scale=True,
        mode='embedded_gaussian', in_channels=320, in_index=3, channels=256,
        dropout_ratio=0.1, num_classes=19, norm_cfg=norm_cfg,
        align_corners=True,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                         loss_weight=1.0)))
