# SSANet, MobileNetV2, Cityscapes: the last row of the paper's Table 1
# (baseline + SNL (K=81) + global pooling + decoder), and the family base
# of the ablation (configs/ablation) and comparison (configs/comparison)
# configs. Data, schedule and inference as ssanet_r101_cityscapes.py; the
# backbone is MobileNetV2 at output stride 16 (the last downsampling, of
# stage 6, removed; stages 6-7 dilated) and the head has 256 channels.
_base_ = ['./ssanet_r101_cityscapes.py']
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
    decode_head=dict(
        in_channels=320, channels=256, decoder=dict(low_level_in_channels=24)),
    auxiliary_head=dict(in_channels=96))
