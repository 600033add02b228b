from .cpu_distributed import CPUDistributedDataParallel, install_cpu_launcher
from .snl_stats_hook import SNLStatsHook, snl_statistics

__all__ = ['CPUDistributedDataParallel', 'install_cpu_launcher',
           'SNLStatsHook', 'snl_statistics']
