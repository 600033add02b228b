# Paper Sec. 4.1: SGD, lr 0.005, momentum 0.9, weight decay 1e-4, "poly"
# lr = base * (1 - iter / max_iter) ** 0.9 (no floor). The number of
# iterations is not given: 80k follows mmseg's Cityscapes practice.
_base_ = ['mmseg::_base_/schedules/schedule_80k.py']
max_iters = 80000
optimizer = dict(type='SGD', lr=0.005, momentum=0.9, weight_decay=1e-4)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=8000)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=8000))
