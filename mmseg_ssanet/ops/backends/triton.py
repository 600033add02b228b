"""The fused Triton kernel (:mod:`.triton_kernels`): the default on CUDA.

On CPU tensors it runs under Triton's interpreter (``TRITON_INTERPRET=1``),
which is how it is tested on machines without a GPU. ``triton`` is
imported only when this backend is used, so the operator still needs
torch alone.
"""
import importlib.util
import os
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

# Inputs may stay in half precision: the kernel accumulates in float32.
HALF_INPUTS = True
MAX_CHANNELS = 4096  # a row of channels is held by one program


def unavailable(device: torch.device) -> Optional[str]:
    """None if the kernel can run on ``device``, else why not."""
    if importlib.util.find_spec('triton') is None:
        return 'triton is not installed (pip install triton)'
    if device.type == 'cuda':
        return None
    if device.type == 'cpu' and os.environ.get('TRITON_INTERPRET') == '1':
        return None
    return (f'the triton kernel runs on CUDA tensors, or on CPU tensors '
            f'under TRITON_INTERPRET=1; got {device}')


def _rows(x: Tensor) -> Tensor:
    """``[B, C, H, W]`` -> contiguous ``[B*H*W, C]`` (a view when
    channels_last)."""
    B, C, H, W = x.shape
    return x.permute(0, 2, 3, 1).reshape(B * H * W, C).contiguous()


def _launch_geometry(cq: int, c: int):
    import triton
    # at least 1: tl.arange needs a non-empty range (Cq = 0 is masked)
    block_cq = triton.next_power_of_2(max(cq, 1))
    block_c = triton.next_power_of_2(max(c, 1))
    # Keep one program's [BLOCK_Q, C] tiles within the register file.
    block_q = max(1, min(32, 8192 // max(block_c, block_cq)))
    return block_q, block_cq, block_c


def _accumulator(dtype: torch.dtype):
    import triton.language as tl
    return tl.float64 if dtype == torch.float64 else tl.float32


class SparseAttentionFunction(torch.autograd.Function):

    @staticmethod
    def forward(ctx, query, key, value, offset, kernel_size, dilation, scale):
        from .triton_kernels import snl_forward_kernel
        B, C, H, W = value.shape
        q, k, v, off = (_rows(x) for x in (query, key, value, offset))
        total, cq = q.shape
        out = torch.empty_like(v)
        acc_dtype = torch.float64 if v.dtype == torch.float64 else \
            torch.float32
        lse = torch.empty(total, device=v.device, dtype=acc_dtype)
        block_q, block_cq, block_c = _launch_geometry(cq, C)
        grid = ((total + block_q - 1) // block_q, )
        snl_forward_kernel[grid](
            q, k, v, off, out, lse, total, H, W, scale, CQ=cq, C=C,
            KH=kernel_size[0], KW=kernel_size[1], DH=dilation[0],
            DW=dilation[1], BLOCK_Q=block_q, BLOCK_CQ=block_cq,
            BLOCK_C=block_c, ACC=_accumulator(v.dtype))
        ctx.save_for_backward(q, k, v, off, out, lse)
        ctx.geometry = (B, C, H, W, kernel_size, dilation, scale)
        return out.view(B, H, W, C).permute(0, 3, 1, 2)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        from .triton_kernels import snl_backward_kernel
        q, k, v, off, out, lse = ctx.saved_tensors
        B, C, H, W, kernel_size, dilation, scale = ctx.geometry
        go = _rows(grad_out)
        total, cq = q.shape
        acc_dtype = lse.dtype
        # softmax backward: sum_k p_k <go, v_k> = <go, out>
        delta = (go.to(acc_dtype) * out.to(acc_dtype)).sum(1)
        grad_q = torch.empty(total, cq, device=q.device, dtype=acc_dtype)
        grad_k = torch.zeros(total, cq, device=q.device, dtype=acc_dtype)
        grad_v = torch.zeros(total, C, device=q.device, dtype=acc_dtype)
        grad_off = torch.empty(total, off.shape[1], device=q.device,
                               dtype=acc_dtype)
        block_q, block_cq, block_c = _launch_geometry(cq, C)
        grid = ((total + block_q - 1) // block_q, )
        snl_backward_kernel[grid](
            q, k, v, off, go, lse, delta, grad_q, grad_k, grad_v, grad_off,
            total, H, W, scale, CQ=cq, C=C, KH=kernel_size[0],
            KW=kernel_size[1], DH=dilation[0], DW=dilation[1],
            BLOCK_Q=block_q, BLOCK_CQ=block_cq, BLOCK_C=block_c,
            ACC=_accumulator(v.dtype))

        def image(rows, like):
            return rows.to(like.dtype).view(B, H, W, -1).permute(0, 3, 1, 2)

        return (image(grad_q, q), image(grad_k, k), image(grad_v, v),
                image(grad_off, off), None, None, None)


# Dynamo does not trace through the launch: run it eagerly (graph break).
@torch.compiler.disable
def attention(query: Tensor, key: Tensor, value: Tensor, offset: Tensor,
              kernel_size: Tuple[int, int], dilation: Tuple[int, int],
              scale: Optional[float]) -> Tensor:
    for name, x in (('query', query), ('value', value)):
        if x.shape[1] > MAX_CHANNELS:
            raise ValueError(f'the triton backend holds a row of channels '
                             f'per program: {name} has {x.shape[1]} > '
                             f'{MAX_CHANNELS} channels; use '
                             f"backend='csr'")
    return SparseAttentionFunction.apply(
        query, key, value, offset, kernel_size, dilation,
        1.0 if scale is None else float(scale))
