"""Every change the plugin makes to other libraries, in one place.

``import mmseg_ssanet`` calls :func:`apply_shims`. Each :class:`Shim` names
the upstream release it was written against, what goes wrong there without
it, and when it applies; ``tests/test_shims.py`` holds one test per shim
that fails the day upstream changes the function it wraps or fixes the
behaviour, so that the shim is reconsidered then. Where a config-level
choice exists it is taken instead of a patch (the distributed model
wrapper: ``engine.cpu_distributed``); what a GPU user runs is not patched.
"""
import atexit
import functools
from dataclasses import dataclass
from typing import Callable, Tuple

import torch

from .features import loads_weights_only_by_default


@dataclass(frozen=True)
class Shim:
    """One workaround.

    Args:
        name: short identifier (``SHIMS`` key, tests).
        upstream: the library releases it was written against.
        works_around: what goes wrong there without it.
        applies: ``() -> bool``: whether this process needs it.
        apply: ``() -> None``: applies it; idempotent.
    """
    name: str
    upstream: str
    works_around: str
    applies: Callable[[], bool]
    apply: Callable[[], None]


def _always() -> bool:
    return True


def _wrap_once(owner, name: str, make_wrapper) -> None:
    """Replace ``owner.name`` by ``make_wrapper(original)``, unless a shim
    has already wrapped it (``import mmseg_ssanet`` runs in every process
    ``mim`` starts, and may run twice in one)."""
    original = getattr(owner, name)
    if getattr(original, '_ssanet_shim', False):
        return
    wrapper = functools.wraps(original)(make_wrapper(original))
    wrapper._ssanet_shim = True
    setattr(owner, name, wrapper)


# -- torch >= 2.6 loading mmengine's checkpoints --------------------------


def _allow_mmengine_checkpoints() -> None:
    from .utils.checkpoint_allowlist import mmengine_checkpoint_globals
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())


CHECKPOINT_GLOBALS = Shim(
    name='checkpoint_globals',
    upstream='mmengine 0.10.7 (CheckpointLoader.load_from_local), '
    'torch >= 2.6 (checked on 2.13: applies; on 2.1.2: not)',
    works_around='mmengine calls torch.load without weights_only, which '
    'torch 2.6 made True: resume, load_from and mim test refuse '
    'the HistoryBuffers and numpy values in mmengine\'s own '
    'checkpoints. The allow-list '
    '(utils.checkpoint_allowlist) admits exactly those. Applies '
    'where a plain torch.load is weights-only (probed).',
    applies=loads_weights_only_by_default,
    apply=_allow_mmengine_checkpoints)

# -- datasets that are missing or in the wrong layout ---------------------


def _check_dataset_layout() -> None:
    from mmseg.datasets import BaseSegDataset

    from .datasets.layout_check import check_before_listing, check_listed

    def checked(original):

        def load_data_list(self):
            check_before_listing(self)
            data_list = original(self)
            check_listed(self, data_list)
            return data_list

        return load_data_list

    _wrap_once(BaseSegDataset, 'load_data_list', checked)


DATASET_LAYOUT = Shim(
    name='dataset_layout',
    upstream='mmseg 1.2.2 (BaseSegDataset.load_data_list(self))',
    works_around='a folder in the wrong layout lists no images and fails '
    'as "need at least one array to concatenate" (or later, '
    '"num_samples should be a positive integer"); a wrong '
    'data_root fails as a bare FileNotFoundError. The '
    'checks (datasets.layout_check) name the folder and the '
    'layout expected.',
    applies=_always,
    apply=_check_dataset_layout)

# -- mmengine's pytorch launcher without CUDA -----------------------------

CPU_WRAPPER_HINT = (
    'mmseg_ssanet: distributed run without CUDA (gloo). The model wrapper '
    'must take CPU modules: the plugin\'s configs set model_wrapper_cfg='
    'dict(type=\'AnyDeviceDistributedDataParallel\'); for a config that '
    'does not inherit them add --cfg-options model_wrapper_cfg.type='
    'CPUDistributedDataParallel (else torch says "DistributedDataParallel '
    'device_ids and output_device arguments only work with ... GPU '
    'modules").')


def _leave_process_group() -> None:
    """Destroy the gloo process group before the interpreter exits.

    mmengine's runner leaves it alive, and a process that exits with it
    alive can die of SIGABRT in its destructor ("terminate called without
    an active exception"): 4 of 20 two-process gloo runs that end so, 0 of
    30 that destroy the group first (torch 2.13, 2 cores). No barrier: a
    rank leaving after an error must not wait for one that is stuck.
    """
    import torch.distributed as torch_dist
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def _launch_without_cuda() -> None:
    from mmengine.dist import utils

    def without_cuda(original):

        def init_dist_pytorch(backend='nccl', init_backend='torch', **kwargs):
            if init_backend != 'torch':
                return original(backend, init_backend=init_backend, **kwargs)
            import torch.distributed as torch_dist

            # NCCL needs CUDA; torch.cuda.set_device is skipped
            backend = 'gloo' if backend == 'nccl' else backend
            torch_dist.init_process_group(backend=backend, **kwargs)
            atexit.register(_leave_process_group)
            if torch_dist.get_rank() == 0:
                print(CPU_WRAPPER_HINT, flush=True)

        return init_dist_pytorch

    _wrap_once(utils, '_init_dist_pytorch', without_cuda)


CPU_LAUNCHER = Shim(
    name='cpu_launcher',
    upstream='mmengine 0.10.7 (dist.utils._init_dist_pytorch(backend, '
    'init_backend=\'torch\', **kwargs))',
    works_around='the pytorch launcher calls torch.cuda.set_device and '
    'asks for nccl, so `--launcher pytorch` fails on a machine '
    'without CUDA; there it initialises gloo instead, and destroys the '
    'process group at exit (left alive, a rank can die of SIGABRT as it '
    'exits). Not applied where CUDA is available.',
    applies=lambda: not torch.cuda.is_available(),
    apply=_launch_without_cuda)

SHIMS: Tuple[Shim, ...] = (CHECKPOINT_GLOBALS, DATASET_LAYOUT, CPU_LAUNCHER)


def apply_shims() -> None:
    """Apply every shim this process needs (idempotent)."""
    for shim in SHIMS:
        if shim.applies():
            shim.apply()
