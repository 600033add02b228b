"""The one interface every backend of the SNL operator declares."""
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor


def double_backward_refused(name: str) -> str:
    """What a backend without second derivatives says when asked."""
    return (f"SNL backend '{name}' has no double backward (the gradient of "
            f"its gradients, what create_graph=True leads to): "
            f"backend='reference' has one")


def refuse_double_backward(backward_op, name: str) -> None:
    """Registers on ``backward_op`` (a backward kernel's op) an autograd
    formula that raises: differentiating the gradients it returns is
    refused instead of silently giving None."""

    def backward(ctx, *grads):
        raise RuntimeError(double_backward_refused(name))

    def setup_context(ctx, inputs, output):
        pass

    backward_op.register_autograd(backward, setup_context=setup_context)


class RefuseDoubleBackward(torch.autograd.Function):
    """Identity on gradients, for backends written as an autograd.Function:
    a second differentiation through them raises. ``anchors``, the tensors
    of the graph that require grad, tie them to every input (gradients
    computed without grad would otherwise be constants, silently)."""

    @staticmethod
    def forward(ctx, name, anchors, *tensors):
        ctx.name = name
        return tuple(g.clone() for g in tensors[anchors:])

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(double_backward_refused(ctx.name))


class _NoOutput(torch.autograd.Function):
    """A problem with no output element (B, H, W or C is 0): the empty
    ``[B, C, H, W]`` output and zero gradients of every input's shape, as
    torch's own ops give."""

    @staticmethod
    def forward(ctx, query, key, value, offset):
        ctx.save_for_backward(query, key, value, offset)
        return value.new_empty(value.shape)

    @staticmethod
    def backward(ctx, grad_out):
        return tuple(torch.zeros_like(x) for x in ctx.saved_tensors)


def no_output(query: Tensor, key: Tensor, value: Tensor,
              offset: Tensor) -> Tensor:
    """The answer to an empty problem (the front end gives it before any
    backend runs; backends that cannot compute one give it too)."""
    return _NoOutput.apply(query, key, value, offset)


class TraceSizes(NamedTuple):
    """The sizes of one traced call of the operator (FLOP counting)."""
    queries: int
    points: int
    query_channels: int
    value_channels: int


def image_trace_sizes(shapes: Sequence[Sequence[int]]) -> TraceSizes:
    """:class:`TraceSizes` of an op called as the front end is:
    (query, key, value, offset), each ``[B, C, H, W]``, offset ``2K``."""
    (b, cq, h, w), value, offset = shapes[0], shapes[2], shapes[3]
    return TraceSizes(b * h * w, offset[1] // 2, cq, value[1])


@dataclass(frozen=True)
class Backend:
    """An implementation of the operator, as the front end uses it.

    Args:
        name: how ``backend=`` selects it.
        attention: ``(query, key, value, offset, kernel_size, dilation,
            scale) -> output``; inputs already checked, query/key/value in
            float32 or float64 (or their half dtype with ``half_inputs``),
            offsets in at least float32.
        unavailable: ``device -> None`` where it runs on that device, else
            the reason (shown to the user).
        half_inputs: takes fp16/bf16 inputs as they are (it accumulates in
            float32 itself) instead of having them promoted.
        trace_names: the names the operator has in a traced graph, for
            FLOP counting (:mod:`mmseg_ssanet.utils.flops`).
        trace_sizes: the input shapes of such a traced call ->
            :class:`TraceSizes`; each backend reads its own arguments.
    """
    name: str
    attention: Callable[..., Tensor]
    unavailable: Callable[[torch.device], Optional[str]]
    half_inputs: bool = False
    trace_names: Tuple[str, ...] = ()
    trace_sizes: Callable[[Sequence[Sequence[int]]], TraceSizes] = \
        image_trace_sizes
