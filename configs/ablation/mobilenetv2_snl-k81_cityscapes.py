# Table 1: baseline + SNL, K = 81 (also Table 2's "+ SNL"): no global
# pooling, no decoder.
_base_ = ['../ssanet_mobilenetv2_cityscapes.py']
model = dict(
    decode_head=dict(num_samples=81, with_global_pool=False, decoder=None))
