"""SSANet (sparse spatial attention network) for MMSegmentation 1.x.

``import mmseg_ssanet`` (or ``custom_imports=dict(imports=['mmseg_ssanet'])``
in a config) registers the plugin's modules into mmseg's registries and
applies the compatibility shims the pinned stack needs, all listed in
:mod:`mmseg_ssanet.shims` (torch>=2.6 loading mmengine's checkpoints,
datasets in the wrong layout named early, mmengine's pytorch launcher on
CPU-only machines).

Without mmseg installed only the operator is there:
``mmseg_ssanet.ops`` needs torch alone.
"""
from .utils.stack import check_mmcv_ops, check_torch_numpy, openmmlab_installed
from .version import __version__

if openmmlab_installed():
    check_torch_numpy()  # before a dataloader worker fails on it
    check_mmcv_ops()  # before mmseg.models, which fails obscurely without

    from . import engine, models  # noqa: F401  (registers modules)
    from .shims import apply_shims

    apply_shims()

__all__ = ['__version__', 'openmmlab_installed']
