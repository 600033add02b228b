# SSANet, ResNet-101, PASCAL Context-59 (paper Table 4): 480x480 crops,
# K = 49. Open in the paper, from mmseg's PASCAL Context-59 practice:
# 4 GPUs x 4 images, 80k iterations, sliding inference (480, stride 320).
_base_ = [
    './_base_/models/ssanet_r101-d16.py',
    'mmseg::_base_/datasets/pascal_context_59.py',
    'mmseg::_base_/default_runtime.py',
    './_base_/schedules/sgd_poly_80k.py',
    './_base_/snl_stats.py',
]
crop_size = (480, 480)
train_dataloader = dict(batch_size=4)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_samples=49, num_classes=59),
    auxiliary_head=dict(num_classes=59),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(320, 320)))
