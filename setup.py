"""Builds the fused CPU kernel of the SNL operator as a torch extension.

Metadata lives in setup.cfg. The extension needs torch at build time, so
install with ``pip install --no-build-isolation -e .`` (``make env`` does).
Where torch cannot be imported (an isolated build) or the compiler fails,
the package installs without it and the operator falls back to its
pure-PyTorch path, with a warning that says how to build it.
"""
import os
import re
import sys
from setuptools import setup

# Build switches, for testing the kernel (``make kernel-check``):
#   SSANET_ISA=x86-64-v4|x86-64-v3|x86-64  compile that one vector variant
#       alone (-march) instead of all of them picked at load time, so each
#       can run on a CPU that would pick another;
#   SSANET_SANITIZE=1  AddressSanitizer + UndefinedBehaviorSanitizer and
#       libstdc++'s bounds assertions; any report aborts the process. Run
#       python with the ASan runtime preloaded
#       (.dev_scripts/check_kernel.py does).
ISAS = ('x86-64-v4', 'x86-64-v3', 'x86-64')
# The torch releases CI tests (make compat-check; docs/installation.md):
# older ones are refused, newer ones built with a note.
TESTED_TORCH = ('2.1', '2.14')
SANITIZE_FLAGS = [
    '-fsanitize=address,undefined', '-fno-sanitize-recover=all',
    '-fno-omit-frame-pointer'
]


def kernel_flags():
    """(compile, link) flags of the fused kernel, from the build switches."""
    compile_args = ['-O3', '-fopenmp', '-std=c++20']
    link_args = ['-fopenmp']
    isa = os.environ.get('SSANET_ISA', '')
    if isa:
        if isa not in ISAS:
            sys.exit(f'SSANET_ISA={isa!r}: choose one of {ISAS}')
        compile_args += [f'-march={isa}', f'-DSNL_ISA={isa}']
    if os.environ.get('SSANET_SANITIZE') == '1':
        compile_args += SANITIZE_FLAGS + ['-O1', '-g', '-D_GLIBCXX_ASSERTIONS']
        link_args += SANITIZE_FLAGS
    return compile_args, link_args


def check_torch():
    """Refuse a torch older than the tested range; note a newer one."""
    import torch

    def release(version):  # '2.1.2+cu121' -> (2, 1)
        return tuple(
            int(p) for p in re.match(r'(\d+)\.(\d+)', version).groups())

    oldest, newest = TESTED_TORCH
    version = release(torch.__version__)
    if version < release(oldest):
        sys.exit(f'mmseg_ssanet needs torch >= {oldest} (tested '
                 f'{oldest} to {newest}); this environment has torch '
                 f'{torch.__version__}. For mmcv\'s prebuilt 2.1.0 wheels '
                 f'install torch 2.1 (docs/installation.md).')
    if version > release(newest):
        print(
            f'mmseg_ssanet: building against torch {torch.__version__}, '
            f'newer than the tested {oldest}-{newest}',
            file=sys.stderr)


def ext_modules():
    if os.environ.get('SSANET_NO_EXT') == '1':
        return {}
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        print(
            'mmseg_ssanet: torch not importable at build time; the fused '
            'CPU kernel is not built (use --no-build-isolation)',
            file=sys.stderr)
        return {}
    check_torch()
    compile_args, link_args = kernel_flags()
    ext = CppExtension(
        'mmseg_ssanet.ops._C',
        ['mmseg_ssanet/ops/csrc/snl_cpu.cpp'],
        # -fopenmp: at::parallel_for is header code using OpenMP pragmas
        # (without it the kernel runs on one thread). The soname matches the
        # libgomp torch loads, so one OpenMP runtime serves both.
        extra_compile_args=compile_args,
        extra_link_args=link_args)
    return dict(
        ext_modules=[ext],
        cmdclass=dict(build_ext=BuildExtension.with_options(use_ninja=True)))


setup(**ext_modules())
