from .snl_block import SparseNonLocal2d, kernel_size_for

__all__ = ['SparseNonLocal2d', 'kernel_size_for']
