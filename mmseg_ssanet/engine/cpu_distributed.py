"""Distributed training on CPU (gloo) through mmengine's pytorch launcher.

mmengine 0.10.7 assumes a GPU in two places: its pytorch launcher calls
``torch.cuda.set_device(LOCAL_RANK)``, which fails on a CPU build of torch,
and its default DDP wrapper passes ``device_ids=[LOCAL_RANK]``, which torch
refuses for a CPU module. With the plugin imported:

* without CUDA, the launcher skips ``set_device`` and, since NCCL needs
  CUDA, initialises gloo instead of nccl (with CUDA nothing changes);
* ``model_wrapper_cfg=dict(type='CPUDistributedDataParallel')`` wraps the
  model for CPU: ``device_ids=None``, and SyncBN layers reverted to BN, as
  mmengine does for single-process runs (torch's SyncBN needs a GPU).

The switch, for any config::

    python -m torch.distributed.run --nproc_per_node 2 \\
        <mmseg>/.mim/tools/train.py CONFIG --launcher pytorch \\
        --cfg-options model_wrapper_cfg.type=CPUDistributedDataParallel
"""
import functools

import torch
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
# mmengine's root registry: Runner.wrap_model looks the type up there.
from mmengine.registry import MODEL_WRAPPERS


def _cuda_free_init_dist_pytorch(original):

    @functools.wraps(original)
    def init_dist_pytorch(backend='nccl', init_backend='torch', **kwargs):
        if torch.cuda.is_available() or init_backend != 'torch':
            return original(backend, init_backend=init_backend, **kwargs)
        import torch.distributed as torch_dist
        backend = 'gloo' if backend == 'nccl' else backend
        torch_dist.init_process_group(backend=backend, **kwargs)

    init_dist_pytorch._ssanet_cpu_aware = True
    return init_dist_pytorch


def install_cpu_launcher() -> None:
    """Make mmengine's pytorch launcher work without CUDA (idempotent)."""
    from mmengine.dist import utils
    if not getattr(utils._init_dist_pytorch, '_ssanet_cpu_aware', False):
        utils._init_dist_pytorch = _cuda_free_init_dist_pytorch(
            utils._init_dist_pytorch)


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` for CPU processes (gloo).

    Reverts SyncBN to BN and passes ``device_ids=None``; extra keyword
    arguments go to ``DistributedDataParallel``.
    """

    def __init__(self, module, detect_anomalous_params=False, **kwargs):
        kwargs.pop('device_ids', None)
        super().__init__(module=revert_sync_batchnorm(module),
                         detect_anomalous_params=detect_anomalous_params,
                         device_ids=None, **kwargs)
