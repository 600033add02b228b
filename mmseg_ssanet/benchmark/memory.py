"""Peak memory of a call: the CPU's resident set, the CUDA allocator's."""
import ctypes
import gc
from typing import Any, Callable

import torch


def _status_kb(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status')


def peak_memory_mb(fn: Callable[[], Any],
                   device='cpu',
                   held: bool = False) -> float:
    """Peak memory while ``fn`` runs, in MB (2**20 bytes).

    On CUDA: ``torch.cuda.max_memory_allocated``. On CPU (Linux): the peak
    resident set (VmHWM). glibc keeps freed blocks on its heap once its
    mmap threshold has grown, where a new call's allocations would not show
    in the resident set: the threshold is pinned (large blocks from mmap,
    returned on free) and the freed heap given back first. That setting
    stays with the process: measure CPU memory in a worker process
    (:func:`~mmseg_ssanet.benchmark.timing.run_worker`) when the same
    process times anything afterwards.

    Args:
        fn (Callable): the call, without arguments.
        device (str | torch.device): ``cpu`` or ``cuda``.
        held (bool): include what is held when ``fn`` starts (weights,
            inputs); False: only the growth over it.
    """
    gc.collect()
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = 0 if held else torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    libc = ctypes.CDLL('libc.so.6')
    libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    libc.malloc_trim(0)
    base = 0 if held else _status_kb('VmRSS')
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM to the current resident set
    fn()
    return (_status_kb('VmHWM') - base) / 1024
