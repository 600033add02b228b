"""Interchangeable implementations of the SNL operator.

Each backend module has ``attention(query, key, value, offset, kernel_size,
dilation, scale)`` (inputs already checked and in float32 or float64),
``unavailable(device)``: None where it can run on that device, else the
reason, and ``TRACE_NAMES``: the names the operator has in a traced graph
(FLOP counting). The front end (:mod:`..functional`) picks one by device.

* ``cpp``: the fused C++ kernel, CPU; built at install time.
* ``triton``: the fused Triton kernel, CUDA (CPU tensors under
  ``TRITON_INTERPRET=1``); needs ``triton``.
* ``csr``: torch's sparse CSR products, any device torch supports them on;
  the pure-PyTorch fallback where neither fused kernel can run.
* ``reference``: the equations with ``grid_sample``; ONNX-exportable.
"""
from . import cpp, csr, reference, triton

BACKENDS = {'cpp': cpp, 'triton': triton, 'csr': csr,
            'reference': reference}

__all__ = ['BACKENDS']
