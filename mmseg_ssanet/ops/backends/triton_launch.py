"""Launch sizes of the Triton kernels (:mod:`.triton_kernels`,
:mod:`.triton_halo`): blocks, warps, stages and register caps per kernel,
each chosen so that ptxas spills nothing
(``tools/analysis_tools/triton_resources.py``), and the accumulator
dtypes."""
import os
from typing import Sequence

import torch

from ...features import triton_register_cap

# ptxas's register cap of the backward kernels (launch_config says why)
BACKWARD_MAX_REGISTERS = 168


def launch_config(kernel: str,
                  cq: int,
                  c: int,
                  k: int,
                  interpreted: bool = False) -> dict:
    """Block sizes, warps and stages of ``kernel`` ('forward', 'backward'
    or 'segment_sum', the ``sorted`` backward's sums) for Cq, C and K
    points.

    A forward program holds [BLOCK_Q, K_PAD] tiles of logits and probabilities
    (the backward keeps its per-point values in [N, K] buffers) and [BLOCK_Q,
    32]-channel chunks of rows; with 8 queries on 4 warps both kernels fit the
    register file for any channel count, with no local memory:
    ``tools/analysis_tools/triton_resources.py`` reports registers and spills
    for sm_80/sm_90a, and its test asserts this for every shape of the paper.
    (16 queries, or 64-channel chunks, measured up to 255 registers and
    hundreds of bytes of spills in the backward.) One stage: software
    pipelining would hold more chunks in flight than registers allow.
    Both kernels carry a register cap, because without one ptxas picks a
    count by its own occupancy heuristic and can spill below it. The
    forward is capped at 128 (several programs share an SM; uncapped,
    ptxas chose 72 registers and spilled 8 bytes at C=40, K=121 on sm_80).
    The backward is capped at 168: uncapped, triton 3.7.1's ptxas chose 80
    registers and spilled 4 bytes at Cq=16, C=24, K=9 on sm_80; at 128 the
    121-point window spills; at 168 it uses 100-163 registers and spills
    nothing at any shape, under triton 3.6.0 and 3.7.1. triton 2.1 has no
    cap to set (:func:`~mmseg_ssanet.features.triton_register_cap`).
    ``interpreted`` (CPU tensors under TRITON_INTERPRET=1, no registers):
    64 queries a program, the same arithmetic in 8x fewer programs, each
    of which the interpreter runs op by op in numpy.
    """
    import triton

    def chunk(n):  # >= 1: tl.arange needs a non-empty range (0 is masked)
        return min(32, triton.next_power_of_2(max(n, 1)))

    if kernel == 'segment_sum':  # the deterministic backward's sums: C rows
        return dict(BLOCK_E=16, BLOCK=chunk(c), num_warps=4, num_stages=1)
    config = dict(
        BLOCK_Q=64 if interpreted else 8,
        BLOCK_CQ=chunk(cq),
        BLOCK_C=chunk(c),
        num_warps=4,
        num_stages=1,
        **triton_register_cap(128 if kernel ==
                              'forward' else BACKWARD_MAX_REGISTERS))
    if kernel == 'forward':  # its logit tile's width
        config['K_PAD'] = triton.next_power_of_2(max(k, 1))
    return config


def halo_block(interpreted: bool = False) -> int:
    """The block of halo pixels every halo kernel takes (32; 128 under the
    interpreter's table): the halo's padded size is a multiple of it."""
    return 128 if interpreted else 32


def halo_config(cq: int,
                c: int,
                kernel_size: Sequence[int],
                dilation: Sequence[int],
                interpreted: bool = False) -> dict:
    """Launch sizes of the ``halo`` forward (:mod:`.triton_halo`) for Cq, C
    and the window: 8x8 query tiles, 32 halo pixels and up to 32 channels
    a ``tl.dot`` (at least 16, its smallest operand; padding channels are
    masked), a margin of 2 pixels for the offsets, and the halo's size
    (HALO_PAD: its pixels padded to a multiple of :func:`halo_block`).
    8 warps and no register cap: with 4 warps, 64-channel chunks or a cap
    of 168, ptxas spilled 300-13000 bytes at (256, 512, 81) on sm_80, and
    triton 3.7.1 spilled 4 bytes in fp32 with 64 halo pixels a product; so
    it uses up to 255 registers and spills nothing
    (``tools/analysis_tools/triton_resources.py``).
    ``interpreted`` (see :func:`launch_config`): 16x16 query tiles and 128
    halo pixels a product, the same arithmetic in about 4x fewer programs
    (the interpreter's cost is per program, point and corner). A map no
    larger than a tile then has every corner on the map in its halo; the
    tests of the paths beyond the halo run the GPU's table
    (``SSANET_TRITON_LAUNCH_TABLE=gpu``)."""
    import triton

    def chunk(n):
        return max(16, min(32, triton.next_power_of_2(max(n, 1))))

    side = 16 if interpreted else 8
    config = dict(
        TILE_H=side,
        TILE_W=side,
        MARGIN=2,
        BLOCK_H=halo_block(interpreted),
        BLOCK_CQ=chunk(cq),
        BLOCK_C=chunk(c),
        num_warps=8,
        num_stages=1)
    config['HALO_H'], config['HALO_W'] = (
        tile + (size - 1) * d + 2 * config['MARGIN'] + 1
        for tile, size, d in ((config['TILE_H'], kernel_size[0], dilation[0]),
                              (config['TILE_W'], kernel_size[1], dilation[1])))
    # a whole number of every halo kernel's blocks of halo pixels
    config['HALO_PAD'] = triton.cdiv(config['HALO_H'] * config['HALO_W'],
                                     config['BLOCK_H']) * config['BLOCK_H']
    return config


def halo_backward_launch(kernel: str, interpreted: bool = False) -> dict:
    """Block sizes, warps and register cap of the ``halo`` backward's tile
    kernels, ``kernel`` 'points' (the score tiles and per-point terms) or
    'gradients' (the coefficient tiles, the query gradient, the far
    corners): 32 halo pixels and 16 channels a product, the query gradient
    32 channels at a time (BLOCK_DQ), 8 warps, a cap of 255. The two in
    one kernel used every register and spilled (172-196 bytes capped at
    208, 8-12 at 255; bf16, (256, 512, 81), sm_80); apart, neither spills
    (``tools/analysis_tools/triton_resources.py``). Measured to spill: 64
    halo pixels a product in the points kernel (triton 3.7.1, 2.1.0), 64
    channels for the query gradient. triton 2.1 has no cap, and with 8
    warps its ptxas chooses 128 registers for the points kernel and
    spills about 100 bytes: that kernel runs on 4 warps there.
    ``interpreted``: 128 halo pixels a product (:func:`halo_config`)."""
    cap = triton_register_cap(255)
    config = dict(
        BLOCK_H=halo_block(interpreted),
        BLOCK_CQ=16,
        BLOCK_C=16,
        num_warps=4 if kernel == 'points' and not cap else 8,
        num_stages=1,
        **cap)
    if kernel == 'gradients':
        config['BLOCK_DQ'] = 32
    return config


def halo_key_value_launch(n: int,
                          dtype: torch.dtype,
                          interpreted: bool = False) -> dict:
    """Channels, queries, warps and register cap of
    ``snl_halo_key_value_kernel`` for gradient rows of ``n`` channels and
    inputs of ``dtype``: a program takes an 8x8 tile of pixels and 64
    channels (at least 16, ``tl.dot``'s smallest operand), so it reads the
    coefficient blocks of the query tiles that reach it once per 64
    channels, and multiplies them by DOT_Q of a query tile's rows at a
    time: in half precision 32 (64 filled sm_80's registers and spilled
    on triton 3.8); in float32, on CUDA cores, 64 (smaller products
    spilled), but on triton 2.1, which has no register cap, 2048 rows x
    channels (with 64 of 64 channels it spilled 364 bytes; with 16 of 32,
    ptxas chose 128 registers and spilled). 8 warps, a cap of 255
    (``triton_resources.py``).
    ``interpreted`` (see :func:`launch_config`): up to 128 channels, fewer
    programs."""
    import triton
    block = max(
        16, min(128 if interpreted else 64, triton.next_power_of_2(max(n, 1))))
    cap = triton_register_cap(255)
    if dtype in (torch.float16, torch.bfloat16):
        dot_q = 32
    else:
        dot_q = 64 if cap else min(64, 2048 // block)
    return dict(BLOCK=block, DOT_Q=dot_q, num_warps=8, num_stages=1, **cap)


# On CPU tensors the interpreter's table applies, unless this variable says
# 'gpu': then the GPU's (8 queries a program, other masks on partial
# blocks), so that its arithmetic is tested under the interpreter too.
LAUNCH_TABLE_ENV = 'SSANET_TRITON_LAUNCH_TABLE'


def interpreted_table(device: torch.device) -> bool:
    """Whether a launch on ``device`` takes the interpreter's table."""
    return (device.type == 'cpu'
            and os.environ.get(LAUNCH_TABLE_ENV, 'interpreter') != 'gpu')


def accumulator(dtype: torch.dtype):
    """The kernels' accumulator for inputs of ``dtype``: float64 for
    float64, else float32."""
    import triton.language as tl
    return tl.float64 if dtype == torch.float64 else tl.float32


def lse_dtype(dtype: torch.dtype) -> torch.dtype:
    """The log-sum-exp's dtype (the accumulator's) for inputs of ``dtype``."""
    return torch.float64 if dtype == torch.float64 else torch.float32
