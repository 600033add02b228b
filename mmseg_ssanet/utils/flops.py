"""FLOPs of any mmseg model, the sparse attention included.

mmengine's complexity counter (``FlopAnalyzer``, fvcore's convention: one
multiply-add = one FLOP) traces the model; a custom autograd Function shows
up as ``prim::PythonOp.<name>`` and a registered op by its name, which it
skips as unsupported. The SNL operator is counted here with its closed
form, per query pixel and sampling point (K points, Cq query/key and C
value channels):

* sampling (eq. 5): 4 corner weights, and a 4-corner weighted sum of the
  key and of the value rows: ``4 + 4 (Cq + C)``;
* logits (eq. 6): ``Cq``; softmax: ``3`` (exp, sum, normalise);
* aggregation (eq. 7): ``C``.

That is ``B * N * K * (5 (Cq + C) + 7)`` for the whole operator, whichever
backend computes it (they do the same arithmetic up to skipped zeros).
"""
from typing import Any, List, Tuple

import torch

from ..ops.backends import BACKENDS

# How the operator shows up in a trace, whichever backend ran: the fused
# kernels' registered torch ops, csr's autograd Function.
SNL_OPS = tuple(name for backend in BACKENDS.values()
                for name in backend.trace_names)


def snl_flops(batch: int, pixels: int, num_points: int, query_channels: int,
              value_channels: int) -> int:
    """The closed form above."""
    return batch * pixels * num_points * (
        5 * (query_channels + value_channels) + 7)


def snl_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """FlopAnalyzer handle of the operator (``SNL_OPS``).

    ``cpp`` and ``triton``: (query, key, value, offset) as ``[B, C, H, W]``;
    ``csr``: (query rows ``[R, Cq]``, key, value rows ``[M, C]``, corner
    index ``[R, K, 4]``, ...).
    """
    from mmengine.analysis.jit_handles import get_shape
    query, value = get_shape(inputs[0]), get_shape(inputs[2])
    if len(query) == 4:
        b, cq, h, w = query
        k = get_shape(inputs[3])[1] // 2
        return snl_flops(b, h * w, k, cq, value[1])
    rows, cq = query
    k = get_shape(inputs[3])[1]
    return snl_flops(1, rows, k, cq, value[1])


def flop_analyzer(model: torch.nn.Module, inputs: Tuple[torch.Tensor, ...]):
    """mmengine's ``FlopAnalyzer`` with the SNL operator counted."""
    from mmengine.analysis import FlopAnalyzer
    return FlopAnalyzer(model, inputs).set_op_handle(
        **{name: snl_flop_jit for name in SNL_OPS})


def count_flops(model: torch.nn.Module, inputs: Tuple[torch.Tensor, ...]
                ) -> Tuple[int, dict]:
    """Total FLOPs and the ops the counter skipped (name -> count)."""
    analyzer = flop_analyzer(model, inputs).unsupported_ops_warnings(
        False).uncalled_modules_warnings(False)
    return analyzer.total(), dict(analyzer.unsupported_ops())
