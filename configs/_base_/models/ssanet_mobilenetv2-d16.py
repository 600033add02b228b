# SSANet on MobileNetV2 at output stride 16: the last downsampling (stage 6)
# removed and stages 6-7 dilated; 256 channels in the head (paper Sec. 3.3).
_base_ = ['./ssanet_r101-d16.py']
model = dict(
    # mmcls' ImageNet classifier; mmengine's mmcls:// loader keeps the keys
    # under "backbone." and strips that prefix.
    pretrained='mmcls://mobilenet_v2',
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        widen_factor=1.,
        strides=(1, 2, 2, 2, 1, 1, 1),
        dilations=(1, 1, 1, 1, 1, 2, 2),
        out_indices=(1, 2, 4, 6),  # strides 4, 8, 16, 16
        norm_cfg={{_base_.norm_cfg}}),
    neck=dict(in_channels=[24, 32, 96, 320]),
    decode_head=dict(in_channels=320, channels=256),
    auxiliary_head=dict(in_channels=96))
