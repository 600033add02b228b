"""SSANet's parts, registered into mmseg's ``MODELS`` on import."""
from .blocks import SparseNonLocal2d
from .decode_heads import SNLHead
from .decoders import SSANetDecoder
from .necks import LowLevelNeck

__all__ = ['SparseNonLocal2d', 'SNLHead', 'SSANetDecoder', 'LowLevelNeck']
