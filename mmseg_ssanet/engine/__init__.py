from .cpu_distributed import (AnyDeviceDistributedDataParallel,
                              CPUDistributedDataParallel,
                              install_cpu_launcher)
from .snl_stats_hook import SNLStatsHook, snl_statistics

__all__ = ['AnyDeviceDistributedDataParallel', 'CPUDistributedDataParallel',
           'install_cpu_launcher', 'SNLStatsHook', 'snl_statistics']
