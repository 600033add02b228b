# Table 1 and 2 baseline: MobileNetV2 FCN (the 3x3 reduce conv and the
# classifier), i.e. SNLHead with every context part switched off.
_base_ = ['../ssanet_mobilenetv2_cityscapes.py']
model = dict(
    decode_head=dict(with_snl=False, with_global_pool=False, decoder=None))
# No SNL block: nothing for the SNL statistics hook to log.
custom_hooks = []
