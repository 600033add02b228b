# SSANet, MobileNetV2, Cityscapes: the last row of the paper's Table 1
# (baseline + SNL (K=81) + global pooling + decoder), and the family base
# of the ablation (configs/ablation) and comparison (configs/comparison)
# configs. Data, schedule and inference as ssanet_r101_cityscapes.py.
_base_ = [
    './_base_/models/ssanet_mobilenetv2-d16.py',
    'mmseg::_base_/datasets/cityscapes_769x769.py',
    'mmseg::_base_/default_runtime.py',
    './_base_/schedules/sgd_poly_80k.py',
]
crop_size = (769, 769)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_samples=81, align_corners=True),
    auxiliary_head=dict(align_corners=True),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(513, 513)))
