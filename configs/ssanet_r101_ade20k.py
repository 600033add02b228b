# SSANet, ResNet-101, ADE20K (paper Table 4): 520x520 crops, K = 49.
# Open in the paper, from mmseg's ADE20K practice: 4 GPUs x 4 images,
# 160k iterations, whole-image inference at the (2048, 512) test scale.
_base_ = [
    './_base_/models/ssanet_r101-d16.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    './_base_/schedules/sgd_poly_80k.py',
    './_base_/snl_stats.py',
]
crop_size = (520, 520)
max_iters = 160000
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(
        type='RandomResize',
        scale=(2048, 520),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_samples=49, num_classes=150),
    auxiliary_head=dict(num_classes=150))
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=16000)
default_hooks = dict(checkpoint=dict(interval=16000))
