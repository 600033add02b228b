# Table 1: baseline + SNL, K = 81 (also Table 2's "+ SNL"): no global
# pooling, no decoder (so no low-level neck).
_base_ = ['../ssanet_mobilenetv2_cityscapes.py']
model = dict(
    neck=None,
    decode_head=dict(num_samples=81, with_global_pool=False, decoder=None))
