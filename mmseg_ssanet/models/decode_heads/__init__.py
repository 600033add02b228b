from .snl_head import SNLHead

__all__ = ['SNLHead']
