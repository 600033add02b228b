# Table 1: baseline + SNL, K = 99.
_base_ = ['../ssanet_mobilenetv2_cityscapes.py']
model = dict(
    decode_head=dict(num_samples=99, with_global_pool=False, decoder=None))
