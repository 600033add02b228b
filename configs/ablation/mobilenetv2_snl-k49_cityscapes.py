# Table 1: baseline + SNL, K = 49.
_base_ = ['./mobilenetv2_snl-k81_cityscapes.py']
model = dict(decode_head=dict(num_samples=49))
