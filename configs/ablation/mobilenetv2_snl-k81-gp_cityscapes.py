# Table 1: baseline + SNL (K = 81) + global pooling branch. The next row,
# + decoder, is the full model: ../ssanet_mobilenetv2_cityscapes.py.
_base_ = ['./mobilenetv2_snl-k81_cityscapes.py']
model = dict(decode_head=dict(with_global_pool=True))
