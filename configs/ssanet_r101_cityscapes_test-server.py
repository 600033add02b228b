# Cityscapes test set for the benchmark server (paper Table 3): instead of
# scoring, `mim test` writes one labelIds PNG per test image (mmseg's
# CityscapesMetric, format_only) into work_dirs/ssanet_cityscapes_test/;
# zip them and upload. Table 3 used multi-scale + flip testing: add --tta.
#   mim test mmseg configs/ssanet_r101_cityscapes_test-server.py \
#       --checkpoint CKPT --tta
_base_ = ['./ssanet_r101_cityscapes.py']
test_dataloader = dict(
    dataset=dict(
        data_prefix=dict(
            img_path='leftImg8bit/test', seg_map_path='gtFine/test')))
test_evaluator = dict(
    _delete_=True,
    type='CityscapesMetric',
    format_only=True,
    keep_results=True,
    output_dir='work_dirs/ssanet_cityscapes_test')
