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

# How the operator shows up in a trace, whichever backend ran (the fused
# kernels' registered torch ops, csr's autograd Function), and which
# backend reads that call's sizes.
TRACED_BY = {
    name: backend
    for backend in BACKENDS.values()
    for name in backend.trace_names
}
SNL_OPS = tuple(TRACED_BY)


def snl_flops(batch: int, pixels: int, num_points: int, query_channels: int,
              value_channels: int) -> int:
    """The closed form above."""
    return batch * pixels * num_points * (5 *
                                          (query_channels + value_channels) +
                                          7)


def snl_flop_handle(name: str):
    """FlopAnalyzer handle of the traced op ``name`` (one of ``SNL_OPS``):
    its backend turns the call's input shapes into sizes."""
    trace_sizes = TRACED_BY[name].trace_sizes

    def count(inputs: List[Any], outputs: List[Any]) -> int:
        from mmengine.analysis.jit_handles import get_shape
        sizes = trace_sizes([get_shape(x) for x in inputs])
        return snl_flops(1, sizes.queries, sizes.points, sizes.query_channels,
                         sizes.value_channels)

    return count


def flop_analyzer(model: torch.nn.Module, inputs: Tuple[torch.Tensor, ...]):
    """mmengine's ``FlopAnalyzer`` with the SNL operator counted."""
    from mmengine.analysis import FlopAnalyzer
    return FlopAnalyzer(model, inputs).set_op_handle(
        **{name: snl_flop_handle(name)
           for name in SNL_OPS})


def count_flops(model: torch.nn.Module,
                inputs: Tuple[torch.Tensor, ...]) -> Tuple[int, dict]:
    """Total FLOPs and the ops the counter skipped (name -> count)."""
    analyzer = flop_analyzer(model, inputs).unsupported_ops_warnings(
        False).uncalled_modules_warnings(False)
    return analyzer.total(), dict(analyzer.unsupported_ops())
