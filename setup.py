"""Builds the fused CPU kernel of the SNL operator as a torch extension.

Metadata lives in setup.cfg. The extension needs torch at build time, so
install with ``pip install --no-build-isolation -e .`` (``make env`` does).
Where torch cannot be imported (an isolated build) or the compiler fails,
the package installs without it and the operator falls back to its
pure-PyTorch path, with a warning that says how to build it.
"""
import os
import sys

from setuptools import setup


def ext_modules():
    if os.environ.get('SSANET_NO_EXT') == '1':
        return {}
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        print('mmseg_ssanet: torch not importable at build time; the fused '
              'CPU kernel is not built (use --no-build-isolation)',
              file=sys.stderr)
        return {}
    ext = CppExtension(
        'mmseg_ssanet.ops._C', ['mmseg_ssanet/ops/csrc/snl_cpu.cpp'],
        # -fopenmp: at::parallel_for is header code using OpenMP pragmas
        # (without it the kernel runs on one thread). The soname matches the
        # libgomp torch loads, so one OpenMP runtime serves both.
        extra_compile_args=['-O3', '-fopenmp', '-std=c++20'],
        extra_link_args=['-fopenmp'])
    return dict(ext_modules=[ext],
                cmdclass=dict(build_ext=BuildExtension.with_options(
                    use_ninja=True)))


setup(**ext_modules())
