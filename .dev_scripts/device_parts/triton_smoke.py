"""Each of the Triton kernel's forward and backward variants at one small size,
with some points off the map: what the device check runs under
compute-sanitizer's memcheck (on CPU tensors under the interpreter in the
rehearsal)."""
import os

import torch

from mmseg_ssanet.ops import sparse_nonlocal_attention as snl
from mmseg_ssanet.ops.backends.triton import (BACKWARD_ENV, BACKWARD_VARIANTS,
                                              DEFAULT_BACKWARD,
                                              DEFAULT_FORWARD, FORWARD_ENV,
                                              FORWARD_VARIANTS)

device = 'cuda' if torch.cuda.is_available() else 'cpu'
g = torch.Generator().manual_seed(0)
q, k = (torch.randn(2, 8, 9, 13, generator=g) for _ in range(2))
v = torch.randn(2, 37, 9, 13, generator=g)
o = torch.randn(2, 18, 9, 13, generator=g) * 3  # some points off the map
xs = [x.to(device).requires_grad_() for x in (q, k, v, o)]
# every variant once: the defaults, then each other backward after each
# forward in turn
others = [b for b in BACKWARD_VARIANTS if b != DEFAULT_BACKWARD]
pairs = [(DEFAULT_FORWARD, DEFAULT_BACKWARD)
         ] + [(FORWARD_VARIANTS[i % len(FORWARD_VARIANTS)], backward)
              for i, backward in enumerate(others)]
assert {f for f, _ in pairs} == set(FORWARD_VARIANTS)
for forward, backward in pairs:
    os.environ[FORWARD_ENV], os.environ[BACKWARD_ENV] = forward, backward
    out = snl(*xs, 3, backend='triton')
    grads = torch.autograd.grad(out.square().sum(), xs)
    assert all(torch.isfinite(t).all() for t in (out, *grads))
print(f'triton forward ({", ".join(FORWARD_VARIANTS)}) + backward '
      f'({", ".join(BACKWARD_VARIANTS)}) on {device}: ok')
