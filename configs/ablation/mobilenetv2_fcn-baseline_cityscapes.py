# Table 1 and 2 baseline: MobileNetV2 FCN (the 3x3 reduce conv and the
# classifier), i.e. SNLHead with every context part switched off.
_base_ = ['./mobilenetv2_snl-k81_cityscapes.py']
model = dict(decode_head=dict(with_snl=False))
# No SNL block: nothing for the SNL statistics hook to log (PSP, ASPP and
# NL inherit this).
custom_hooks = []
