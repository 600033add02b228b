"""torch>=2.6 loads mmengine's checkpoints safely with the allow-list
(utils/checkpoint_allowlist.py), and refuses everything else.

The allow-list exists where torch can allow-list (``safe_globals``, 2.5)
and is registered process-wide only where a plain load is weights-only
(2.6 on: the shim); on torch 2.1 mmengine loads its checkpoints with a full
unpickle, as it always has there, and those tests do not apply."""
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import load_checkpoint

import mmseg_ssanet  # noqa: F401  (installs the allow-list)
from mmseg_ssanet.features import HAS_SAFE_GLOBALS
from mmseg_ssanet.shims import CHECKPOINT_GLOBALS
from .conftest import training_like_checkpoint

needs_shim = pytest.mark.skipif(
    not CHECKPOINT_GLOBALS.applies(),
    reason=f'torch {torch.__version__} does not load weights-only by '
    f'default: the allow-list shim does not apply (test_shims.py)')


@needs_shim
def test_without_allow_list_torch_refuses_mmengine_checkpoints(tmp_path):
    # The premise of the fix: torch's default weights_only load refuses them.
    path = str(tmp_path / 'iter_5.pth')
    training_like_checkpoint(path)
    torch.serialization.clear_safe_globals()
    try:
        with pytest.raises(pickle.UnpicklingError, match='Weights only'):
            torch.load(path)
    finally:
        CHECKPOINT_GLOBALS.apply()
    assert 'message_hub' in torch.load(path)


@pytest.mark.skipif(
    not HAS_SAFE_GLOBALS,
    reason='torch before 2.5 has no '
    'torch.serialization.safe_globals')
def test_the_allow_list_works_locally_too(tmp_path):
    # what utils/publish.py does: no process-wide registration needed
    from mmseg_ssanet.utils.checkpoint_allowlist import \
        mmengine_checkpoint_globals
    path = str(tmp_path / 'iter_5.pth')
    training_like_checkpoint(path)
    torch.serialization.clear_safe_globals()
    try:
        with torch.serialization.safe_globals(mmengine_checkpoint_globals()):
            assert 'message_hub' in torch.load(path, weights_only=True)
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path, weights_only=True)
    finally:
        if CHECKPOINT_GLOBALS.applies():
            CHECKPOINT_GLOBALS.apply()


def test_mmengine_loads_its_checkpoint(tmp_path):
    # what Runner.resume / load_from use, on every torch
    path = str(tmp_path / 'iter_5.pth')
    model = training_like_checkpoint(path)
    fresh = torch.nn.Conv2d(3, 4, 1)
    load_checkpoint(fresh, path)
    torch.testing.assert_close(fresh.weight, model.weight)


@needs_shim
def test_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    path = str(tmp_path / 'iter_5.pth')
    model = training_like_checkpoint(path)
    ckpt = torch.load(path, weights_only=True)
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    np.testing.assert_allclose(buf.mean(),
                               np.mean([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5]))
    # mmengine's own loader (what Runner.resume / load_from use) works too.
    fresh = torch.nn.Conv2d(3, 4, 1)
    load_checkpoint(fresh, path)
    torch.testing.assert_close(fresh.weight, model.weight)


class _Payload:

    def __reduce__(self):
        return (os.system, ('echo pwned', ))


class _Custom:
    pass


@pytest.mark.parametrize(
    'obj', [_Payload(), _Custom()], ids=['os.system', 'custom-class'])
def test_other_pickled_objects_are_still_refused(tmp_path, obj):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'extra': obj}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


@needs_shim
def test_getattr_beyond_history_buffer_is_refused(tmp_path):

    class Reach:

        def __reduce__(self):
            return (getattr, (np.ndarray, 'tofile'))

    path = tmp_path / 'reach.pth'
    torch.save({'x': Reach()}, path)
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(path, weights_only=True)


def test_private_history_buffer_attribute_is_refused(tmp_path):

    class Reach:

        def __reduce__(self):
            return (getattr, (HistoryBuffer, '__init__'))

    path = tmp_path / 'reach.pth'
    torch.save({'x': Reach()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
