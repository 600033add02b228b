"""SSANet's parts, registered into mmseg's ``MODELS`` on import."""
from ..utils.stack import require_openmmlab

require_openmmlab('mmseg_ssanet.models')

from .blocks import SparseNonLocal2d  # noqa: E402
from .decode_heads import SNLHead  # noqa: E402
from .decoders import SSANetDecoder  # noqa: E402

__all__ = ['SparseNonLocal2d', 'SNLHead', 'SSANetDecoder']
