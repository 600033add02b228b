from .layout_check import DatasetLayoutError
from .synthetic import FORMATS, generate, make_scene

__all__ = ['DatasetLayoutError', 'FORMATS', 'generate', 'make_scene']
