"""Which parts of the OpenMMLab stack are installed, checked early.

The operator (``mmseg_ssanet.ops``) needs torch alone; everything else needs
mmseg, mmengine and mmcv *with* its compiled ops, and fails obscurely
inside ``mmseg.models`` without them. These functions say so first.
"""
import importlib
import importlib.util

MMCV_OPS_HINT = (
    'mmseg_ssanet needs mmcv 2.1.0 *with* its compiled ops (the `mmcv` '
    'package, not `mmcv-lite`): mmseg.models imports mmcv.ops. Install it '
    'with `pip install --find-links <wheel dir> mmcv==2.1.0` or build it from '
    'source against the installed torch (`python tools/misc/build_mmcv.py '
    '--out <wheel dir>` in a checkout of this project, which also works on '
    'Python 3.13; 10-30 minutes on 2 cores); see docs/installation.md.')


def openmmlab_installed() -> bool:
    """Whether mmseg is installed (then mmcv with its ops must be too)."""
    try:
        return importlib.util.find_spec('mmseg') is not None
    except (ImportError, ValueError):
        return False


def require_openmmlab(what: str) -> None:
    """Raise ImportError naming ``what`` if mmseg is not installed."""
    if not openmmlab_installed():
        raise ImportError(
            f'{what} needs mmsegmentation, mmcv (with its ops) and '
            f'mmengine; see README.md, "Install". The SNL operator, '
            f'mmseg_ssanet.ops, works with torch alone.')


def check_torch_numpy() -> None:
    """Raise ImportError naming the numpy to install where torch cannot
    use the installed one.

    A torch built against numpy 1.x (torch 2.1, the stack of mmcv's
    prebuilt wheels) imports beside numpy 2 with a warning and then fails
    at its first ``torch.from_numpy``, deep inside a dataloader worker
    ("Numpy is not available"). One ``pip install`` of a package that
    wants numpy 2 brings that about; asked here, before training starts.
    """
    import numpy
    import torch
    try:
        torch.from_numpy(numpy.zeros(1))
    except RuntimeError as err:
        raise ImportError(
            f'torch {torch.__version__} cannot use the installed numpy '
            f'{numpy.__version__} ({err}): this torch was built against '
            f'numpy 1.x. Install numpy 1.x with the packages that still '
            f'take it: pip install "numpy<2" "opencv-python<4.12" '
            f'"pandas<3" (requirements/torch2.1.txt).') from err


def check_mmcv_ops() -> None:
    """Raise ImportError with an install hint if ``mmcv._ext`` is missing."""
    try:
        importlib.import_module('mmcv')
    except ImportError as err:
        raise ImportError(f'mmcv is not installed. {MMCV_OPS_HINT}') from err
    try:
        importlib.import_module('mmcv._ext')
    except ImportError as err:
        if 'undefined symbol' in str(err):
            import torch
            raise ImportError(
                f'mmcv\'s compiled ops were built for another torch than '
                f'the installed {torch.__version__} ({err}). Install the '
                f'mmcv 2.1.0 build for this torch (torch 2.1: `mim install '
                f'mmcv==2.1.0`) or build it against this torch. '
                f'{MMCV_OPS_HINT}') from err
        raise ImportError(
            f'mmcv is installed without its compiled ops (mmcv-lite, or a '
            f'build that does not match torch): {err}. {MMCV_OPS_HINT}'
        ) from err
