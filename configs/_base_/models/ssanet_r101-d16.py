# SSANet on ResNet-101 at output stride 16 (paper Sec. 3.3, Fig. 2): the
# last downsampling removed (strides 1,2,2,1), the last stage dilated (2).
custom_imports = dict(imports=['mmseg_ssanet'], allow_failed_imports=False)
# SyncBN for multi-GPU training; mmengine reverts it to BN in single-process
# runs, and the wrapper below does for CPU (gloo) runs.
norm_cfg = dict(type='SyncBN', requires_grad=True)
# Multi-process runs (--launcher pytorch): on GPUs exactly mmengine's default
# DDP wrapper; on a CPU-only machine device_ids=None and SyncBN -> BN, so
# `mim train mmseg CONFIG --gpus N --launcher pytorch` works there too.
model_wrapper_cfg = dict(
    type='AnyDeviceDistributedDataParallel',
    broadcast_buffers=False,
    find_unused_parameters=False)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(
        type='ResNetV1c',
        depth=101,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        strides=(1, 2, 2, 1),
        dilations=(1, 1, 1, 2),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True),
    decode_head=dict(
        type='SNLHead',
        in_channels=2048,
        in_index=3,
        channels=512,
        num_samples=81,
        with_snl=True,
        with_global_pool=True,
        # the decoder's low-level input: res2 (stride 4, 256 channels),
        # reduced to 48 channels (DeepLabV3+'s width; the paper gives none)
        decoder=dict(
            type='SSANetDecoder',
            low_level_index=0,
            low_level_in_channels=256,
            low_level_channels=48),
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    # The paper does not mention an auxiliary head; mmseg's DeepLabV3+
    # practice (FCN on res4, weight 0.4) is kept.
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=1024,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
