"""SSANet (sparse spatial attention network) for MMSegmentation 1.x.

``import mmseg_ssanet`` (or ``custom_imports=dict(imports=['mmseg_ssanet'])``
in a config) registers the plugin's modules into mmseg's registries and
applies the compatibility fixes the pinned stack needs:

* torch>=2.6 loads mmengine's checkpoints with ``weights_only=True``
  (an allow-list, see :mod:`mmseg_ssanet.utils.checkpoint_compat`);
* datasets with a missing or misplaced folder fail early with a message that
  names the expected layout (:mod:`mmseg_ssanet.datasets.layout_check`);
* mmengine's pytorch launcher works on CPU-only machines (gloo), with the
  ``CPUDistributedDataParallel`` wrapper
  (:mod:`mmseg_ssanet.engine.cpu_distributed`).

Without mmseg installed only the operator is there:
``mmseg_ssanet.ops`` needs torch alone.
"""
import importlib.util

from .version import __version__


def openmmlab_installed() -> bool:
    """Whether mmseg is installed (then mmcv with its ops must be too)."""
    try:
        return importlib.util.find_spec('mmseg') is not None
    except (ImportError, ValueError):
        return False


if openmmlab_installed():
    from .utils.mmcv_check import check_mmcv_ops

    check_mmcv_ops()  # before mmseg.models, which fails obscurely without

    from .datasets.layout_check import install_layout_check
    from .engine import install_cpu_launcher
    from .utils.checkpoint_compat import allow_mmengine_checkpoints

    allow_mmengine_checkpoints()
    install_layout_check()
    install_cpu_launcher()

    from . import models  # noqa: F401  (registers modules)

__all__ = ['__version__', 'openmmlab_installed']
