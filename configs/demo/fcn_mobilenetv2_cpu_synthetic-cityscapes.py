# mmseg's own FCN on MobileNetV2 (output stride 16), sized for a CPU run on
# the generated Cityscapes-format scenes. Trained from scratch: there is no
# network here to fetch ImageNet weights.
_base_ = ['../_base_/cpu_synthetic_cityscapes.py']
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0, seg_pad_val=255,
    size=(128, 128))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='MobileNetV2', widen_factor=0.5,
        strides=(1, 2, 2, 2, 1, 2, 1), dilations=(1, 1, 1, 1, 1, 1, 2),
        out_indices=(1, 2, 4, 6), norm_cfg=norm_cfg),
    decode_head=dict(
        type='FCNHead', in_channels=160, in_index=3, channels=64, num_convs=2,
        concat_input=True, dropout_ratio=0.1, num_classes=19,
        norm_cfg=norm_cfg, align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                         loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
