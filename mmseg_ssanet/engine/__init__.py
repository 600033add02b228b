from .cpu_distributed import (AnyDeviceDistributedDataParallel,
                              CPUDistributedDataParallel)
from .snl_stats_hook import SNLStatsHook, snl_statistics

__all__ = [
    'AnyDeviceDistributedDataParallel', 'CPUDistributedDataParallel',
    'SNLStatsHook', 'snl_statistics'
]
