# Table 1: baseline + SNL, K = 49.
_base_ = ['../ssanet_mobilenetv2_cityscapes.py']
model = dict(
    decode_head=dict(num_samples=49, with_global_pool=False, decoder=None))
