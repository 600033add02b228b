"""SSANet's parts, registered into mmseg's ``MODELS`` on import."""
from .. import openmmlab_installed

if not openmmlab_installed():
    raise ImportError(
        'mmseg_ssanet.models needs mmsegmentation, mmcv (with its ops) and '
        'mmengine; see README.md, "Install". The SNL operator, '
        'mmseg_ssanet.ops, works with torch alone.')

from .blocks import SparseNonLocal2d  # noqa: E402
from .decode_heads import SNLHead  # noqa: E402
from .decoders import SSANetDecoder  # noqa: E402
from .necks import LowLevelNeck  # noqa: E402

__all__ = ['SparseNonLocal2d', 'SNLHead', 'SSANetDecoder', 'LowLevelNeck']
