# Table 2: "+ SNL" is Table 1's baseline + SNL with K = 81.
_base_ = ['../ablation/mobilenetv2_snl-k81_cityscapes.py']
