"""The sparse non-local (SNL) operator. Needs torch only."""
from .functional import (BACKENDS, DEFAULT_BACKENDS, as_pair, check_backend,
                         resolve_backend, sparse_nonlocal_affinity,
                         sparse_nonlocal_attention)
from .sampling import bilinear_corners, initial_grid, sampling_positions

__all__ = [
    'BACKENDS', 'DEFAULT_BACKENDS', 'as_pair', 'check_backend',
    'resolve_backend', 'sparse_nonlocal_affinity', 'sparse_nonlocal_attention',
    'initial_grid', 'sampling_positions', 'bilinear_corners'
]
