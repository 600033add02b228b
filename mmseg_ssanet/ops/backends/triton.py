"""Placeholder until the Triton kernel lands (see triton_kernels.py)."""
import torch


def unavailable(device: torch.device):
    return 'the triton backend is not implemented yet'


def attention(*args):
    raise RuntimeError(unavailable(None))
