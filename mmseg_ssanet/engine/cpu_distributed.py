"""Distributed training on CPU (gloo) through mmengine's pytorch launcher.

mmengine 0.10.7 assumes a GPU in two places: its pytorch launcher calls
``torch.cuda.set_device(LOCAL_RANK)``, which fails on a CPU build of torch,
and its default DDP wrapper passes ``device_ids=[LOCAL_RANK]``, which torch
refuses for a CPU module. With the plugin imported:

* without CUDA, the launcher skips ``set_device`` and initialises gloo
  instead of nccl (the ``cpu_launcher`` shim, :mod:`mmseg_ssanet.shims`;
  with CUDA nothing is patched);
* the plugin's configs set ``model_wrapper_cfg`` to
  ``AnyDeviceDistributedDataParallel``: on a GPU exactly mmengine's
  default (``MMDistributedDataParallel``, ``device_ids=[LOCAL_RANK]``,
  ``broadcast_buffers=False``), on CPU ``device_ids=None`` with SyncBN
  reverted to BN, as mmengine does for single-process runs (torch's SyncBN
  needs a GPU). So ``mim train mmseg CONFIG --gpus N --launcher pytorch``
  works on a CPU-only machine as typed;
* ``CPUDistributedDataParallel`` is the CPU behaviour alone, the switch
  for a config of one's own that does not inherit the plugin's:
  ``--cfg-options model_wrapper_cfg.type=CPUDistributedDataParallel``
  (the launcher says so when it starts without CUDA).
"""
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
# mmengine's root registry: Runner.wrap_model looks the type up there.
from mmengine.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` for CPU processes (gloo).

    Reverts SyncBN to BN and passes ``device_ids=None``; extra keyword
    arguments go to ``DistributedDataParallel``.
    """

    def __init__(self, module, detect_anomalous_params=False, **kwargs):
        kwargs.pop('device_ids', None)
        super().__init__(
            module=revert_sync_batchnorm(module),
            detect_anomalous_params=detect_anomalous_params,
            device_ids=None,
            **kwargs)


@MODEL_WRAPPERS.register_module()
class AnyDeviceDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's default DDP wrapper on a GPU, the CPU one on CPU.

    A module on CUDA gets exactly what mmengine builds without a
    ``model_wrapper_cfg`` (``device_ids=[LOCAL_RANK]`` from the runner,
    ``broadcast_buffers`` and ``find_unused_parameters`` from this config);
    a module on CPU gets ``device_ids=None`` and SyncBN reverted to BN.
    """

    def __init__(self,
                 module,
                 broadcast_buffers=False,
                 find_unused_parameters=False,
                 **kwargs):
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        if on_cpu:
            kwargs['device_ids'] = None
            module = revert_sync_batchnorm(module)
        super().__init__(
            module=module,
            broadcast_buffers=broadcast_buffers,
            find_unused_parameters=find_unused_parameters,
            **kwargs)
