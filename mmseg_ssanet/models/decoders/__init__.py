from .ssanet_decoder import SSANetDecoder

__all__ = ['SSANetDecoder']
