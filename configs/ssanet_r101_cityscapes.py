# SSANet, ResNet-101, Cityscapes (paper Tables 3 and 4.1): 769x769 crops,
# K = 81 samples. What the paper leaves open follows mmseg's 769x769
# Cityscapes practice: 4 GPUs x 2 images, 80k iterations, sliding-window
# inference (769 crops, stride 513), align_corners=True.
_base_ = [
    './_base_/models/ssanet_r101-d16.py',
    'mmseg::_base_/datasets/cityscapes_769x769.py',
    'mmseg::_base_/default_runtime.py',
    './_base_/schedules/sgd_poly_80k.py',
    './_base_/snl_stats.py',
]
crop_size = (769, 769)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_samples=81, align_corners=True),
    auxiliary_head=dict(align_corners=True),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(513, 513)))
