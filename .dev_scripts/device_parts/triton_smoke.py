"""The Triton kernel's forward and both backwards at one small size, with
some points off the map: what the device check runs under
compute-sanitizer's memcheck (on CPU tensors under the interpreter in the
rehearsal)."""
import torch

from mmseg_ssanet.ops import sparse_nonlocal_attention as snl

device = 'cuda' if torch.cuda.is_available() else 'cpu'
g = torch.Generator().manual_seed(0)
q, k = (torch.randn(2, 8, 9, 13, generator=g) for _ in range(2))
v = torch.randn(2, 37, 9, 13, generator=g)
o = torch.randn(2, 18, 9, 13, generator=g) * 3  # some points off the map
xs = [x.to(device).requires_grad_() for x in (q, k, v, o)]
for deterministic in (False, True):
    torch.use_deterministic_algorithms(deterministic)
    out = snl(*xs, 3, backend='triton')
    grads = torch.autograd.grad(out.square().sum(), xs)
    assert all(torch.isfinite(t).all() for t in (out, *grads))
torch.use_deterministic_algorithms(False)
print(f'triton forward + backward (default, deterministic) on {device}: ok')
