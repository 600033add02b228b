"""What torch>=2.6 may unpickle from mmengine's own checkpoints.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; since torch 2.6
that defaults to True and the unpickler refuses anything it does not know,
including what a training checkpoint carries besides tensors (the message
hub's ``HistoryBuffer``s and the numpy arrays and scalars inside them).

Rather than switching safe loading off, the plugin allow-lists exactly those
types (the ``checkpoint_globals`` shim, :mod:`mmseg_ssanet.shims`; or
locally, ``torch.serialization.safe_globals(mmengine_checkpoint_globals())``).
A checkpoint that pickles any other object is still refused by torch.

One entry needs care: ``HistoryBuffer.__getstate__`` stores its statistics
methods, which pickle as ``getattr(HistoryBuffer, 'mean')``. Allowing the real
``builtins.getattr`` would let a checkpoint reach any attribute of any allowed
object, so the name ``builtins.getattr`` is mapped to
:func:`history_buffer_method`, which resolves only those methods.
"""
import pickle

import numpy as np


def history_buffer_method(owner, name: str):
    """``getattr`` restricted to the public methods of ``HistoryBuffer``."""
    from mmengine.logging.history_buffer import HistoryBuffer
    method = getattr(HistoryBuffer, name, None) if (
        owner is HistoryBuffer and not name.startswith('_')) else None
    if not callable(method):
        raise pickle.UnpicklingError(
            f'refusing getattr({owner!r}, {name!r}) while loading a '
            f'checkpoint: mmseg_ssanet only allows the statistics methods of '
            f'mmengine\'s HistoryBuffer')
    return method


def mmengine_checkpoint_globals() -> list:
    """The non-tensor types found in checkpoints that mmengine writes."""
    from mmengine.logging.history_buffer import HistoryBuffer

    # numpy moved ``core`` to ``_core`` in 2.0; pickles name whichever the
    # writer had, so allow both spellings where they exist.
    reconstruct, scalar = [], []
    for mod_name in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        try:
            mod = __import__(mod_name, fromlist=['_reconstruct'])
        except ImportError:
            continue
        reconstruct.append((mod._reconstruct, f'{mod_name}._reconstruct'))
        scalar.append((mod.scalar, f'{mod_name}.scalar'))
    dtype_classes = [
        type(np.dtype(t))
        for t in (np.float64, np.float32, np.float16, np.int64, np.int32,
                  np.int16, np.int8, np.uint8, np.bool_)
    ]
    restricted_getattr = [(history_buffer_method, f'{m}.getattr')
                          for m in ('builtins', '__builtin__')]
    return [
        HistoryBuffer, np.ndarray, np.dtype, *reconstruct, *scalar,
        *dtype_classes, *restricted_getattr
    ]
