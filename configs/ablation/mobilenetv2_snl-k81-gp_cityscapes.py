# Table 1: baseline + SNL (K = 81) + global pooling branch. The next row,
# + decoder, is the full model: ../ssanet_mobilenetv2_cityscapes.py.
_base_ = ['../ssanet_mobilenetv2_cityscapes.py']
model = dict(
    decode_head=dict(num_samples=81, with_global_pool=True, decoder=None))
