from .functional import BACKENDS, sparse_nonlocal_attention
from .sampling import bilinear_corners, initial_grid, sampling_positions

__all__ = ['BACKENDS', 'sparse_nonlocal_attention', 'initial_grid',
           'sampling_positions', 'bilinear_corners']
