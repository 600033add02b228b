from .cpu_distributed import CPUDistributedDataParallel, install_cpu_launcher

__all__ = ['CPUDistributedDataParallel', 'install_cpu_launcher']
