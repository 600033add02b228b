from .blocks import SparseNonLocal2d

__all__ = ['SparseNonLocal2d']
