# Table 2: "+ SNL" is Table 1's baseline + SNL with K = 81
# (../ablation/mobilenetv2_snl-k81_cityscapes.py).
_base_ = ['../ssanet_mobilenetv2_cityscapes.py']
model = dict(
    decode_head=dict(num_samples=81, with_global_pool=False, decoder=None))
