"""Fail early, and say why, when mmcv is installed without its compiled ops."""
import importlib

MMCV_OPS_HINT = (
    'mmseg_ssanet needs mmcv 2.1.0 *with* its compiled ops (the `mmcv` '
    'package, not `mmcv-lite`): mmseg.models imports mmcv.ops. Install it '
    'with `pip install --find-links <wheel dir> mmcv==2.1.0` or build it from '
    'source (`pip install --no-build-isolation mmcv==2.1.0`, about 9 minutes '
    'on 2 cores); see README.md, "Install".')


def check_mmcv_ops() -> None:
    """Raise ImportError with an install hint if ``mmcv._ext`` is missing."""
    try:
        importlib.import_module('mmcv')
    except ImportError as err:
        raise ImportError(f'mmcv is not installed. {MMCV_OPS_HINT}') from err
    try:
        importlib.import_module('mmcv._ext')
    except ImportError as err:
        raise ImportError(
            f'mmcv is installed without its compiled ops (mmcv-lite, or a '
            f'build that does not match torch): {err}. {MMCV_OPS_HINT}'
        ) from err
