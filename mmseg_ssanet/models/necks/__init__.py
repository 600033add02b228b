from .low_level_neck import LowLevelNeck

__all__ = ['LowLevelNeck']
