"""Training statistics of every SNL block: is it learning where to look?

The SSANet configs switch it on (``configs/_base_/snl_stats.py``)::

    custom_hooks = [dict(type='SNLStatsHook', interval=50)]

and the command line changes it (mmengine's ``--cfg-options`` cannot
parse a ``dict(...)`` value, so a config adds it, the command line tunes
it)::

    mim train mmseg CONFIG --cfg-options custom_hooks.0.interval=10
    mim train mmseg CONFIG --cfg-options custom_hooks=[]   # off

Every ``interval`` training iterations, for each ``SparseNonLocal2d`` block
(named by its place in the model, e.g. ``decode_head.snl``), on that
iteration's input of the block:

* ``offset_mean``, ``offset_max``: length of the learned offsets, in feature
  pixels (0 at the start: the points sit on the regular grid);
* ``entropy``: mean attention entropy over log K (1.0: uniform weights,
  towards 0: attention on few points);
* ``outside``: fraction of sampling points outside the feature map (they
  read zeros).

They go into mmengine's message hub as ``train/snl/<block>/<name>``
scalars, so the logger prints them and every configured visualisation
backend (TensorBoard among them) receives them, as
``snl/<block>/<name>`` (the logger drops the ``train/`` prefix).
"""
import math
from typing import Dict, Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from ..models import SparseNonLocal2d


def snl_statistics(block: SparseNonLocal2d,
                   x: torch.Tensor) -> Dict[str, float]:
    """The four statistics of ``block`` on its input ``x``."""
    with torch.no_grad():
        t_y, t_x, weight = block.sampling_points(x)  # [B, K, H, W]
        offset = block.sample_offsets(x).float()
        B, K2, H, W = offset.shape
        length = offset.view(B, K2 // 2, 2, H, W).norm(dim=2)
        entropy = -(weight * weight.clamp_min(1e-12).log()).sum(1)
        outside = (t_y < 0) | (t_y > H - 1) | (t_x < 0) | (t_x > W - 1)
        log_k = math.log(weight.shape[1]) if weight.shape[1] > 1 else 1.0
        return dict(
            offset_mean=length.mean().item(),
            offset_max=length.max().item(),
            entropy=(entropy.mean() / log_k).item(),
            outside=outside.float().mean().item())


@HOOKS.register_module()
class SNLStatsHook(Hook):
    """Log the SNL blocks' offsets, attention entropy and points outside.

    Args:
        interval (int): Every how many training iterations. Default: 50.
    """

    priority = 'NORMAL'

    def __init__(self, interval: int = 50):
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'SNLStatsHook: interval must be a positive '
                             f'int, got {interval!r}')
        self.interval = interval
        self._inputs: Dict[str, torch.Tensor] = {}
        self._handles = []
        self._due = False

    def before_run(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        self._blocks = {
            name: m
            for name, m in model.named_modules()
            if isinstance(m, SparseNonLocal2d)
        }
        if not self._blocks:
            runner.logger.warning('SNLStatsHook: the model has no '
                                  'SparseNonLocal2d block; nothing to log')
        for name, block in self._blocks.items():
            self._handles.append(
                block.register_forward_hook(self._capture(name)))

    def _capture(self, name):

        def hook(module, args, output):
            if self._due:
                self._inputs[name] = args[0].detach()

        return hook

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        self._due = self.every_n_train_iters(runner, self.interval)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not self._due:
            return
        self._due = False
        for name, x in self._inputs.items():
            stats = snl_statistics(self._blocks[name], x)
            for key, value in stats.items():
                runner.message_hub.update_scalar(f'train/snl/{name}/{key}',
                                                 value)
        self._inputs.clear()

    def after_run(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
