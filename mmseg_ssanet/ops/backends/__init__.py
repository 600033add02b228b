"""Interchangeable implementations of the SNL operator.

Each backend module declares one :class:`.base.Backend` (``BACKEND``): its
``attention`` function, ``unavailable(device)`` (None where it runs, else
why not), whether it takes half-precision inputs as they are, and the
names it has in a traced graph (FLOP counting). The front end
(:mod:`..functional`) picks one by device.

* ``cpp``: the fused C++ kernel, CPU; built at install time.
* ``triton``: the fused Triton kernel, CUDA (CPU tensors under
  ``TRITON_INTERPRET=1``); needs ``triton``.
* ``csr``: torch's sparse CSR products, any device torch supports them on;
  the pure-PyTorch fallback where neither fused kernel can run.
* ``reference``: the equations with ``grid_sample``; ONNX-exportable.
"""
from . import cpp, csr, reference, triton
from .base import Backend

BACKENDS = {
    b.name: b
    for b in (cpp.BACKEND, triton.BACKEND, csr.BACKEND, reference.BACKEND)
}

__all__ = ['BACKENDS', 'Backend']
