"""The device check in its CPU mode, on the stack a bare GPU machine has
(`make device-rehearsal`; `.ci/run` runs it, any failed part fails it).

A throwaway venv with torch, triton 3.6.0, a current numpy (2.4 or later),
pytest, hypothesis, ninja and the libraries that machine has (opencv,
matplotlib, scipy, pandas, ...) -- no mmcv, mmengine or mmseg -- and a copy
of this checkout, not installed. The OpenMMLab stack comes as the GPU
machine gets it: a folder of wheels given to --wheels (the pure-Python
ones of ../shared/wheels/device-cp312/, which serve any Python 3, and mmcv
built for this venv's torch, MMCV_WHEELS/mmcv-*cp311*); without those the
model parts are skipped, as there.

    python3 .dev_scripts/rehearse_device_check.py [OUT_DIR]
    MMCV_WHEELS=../shared/wheels   where the mmcv wheel and device-cp312/ are
"""
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time

from dev_common import REPO, argument_parser, copy_checkout

# torch pinned: pip's configured find-links hold its CPU build (an open
# range would pull a multi-GB CUDA one)
BARE_STACK = [
    'torch==2.13.0', 'triton==3.6.0', 'numpy>=2.4', 'pytest', 'hypothesis',
    'ninja', 'setuptools>=77,<81', 'opencv-python-headless', 'matplotlib',
    'scipy', 'pandas', 'regex', 'rich', 'markdown', 'tqdm', 'pyyaml',
    'requests', 'click', 'colorama', 'tabulate', 'packaging', 'pillow',
    'einops'
]


def device_wheels(shared):
    """The wheels a GPU machine is given: mmcv for this venv's torch and
    the pure-Python OpenMMLab packages; empty when either is missing."""
    mmcv = sorted(glob.glob(osp.join(shared, 'mmcv-2.1.0-cp311-*.whl')))
    rest = sorted(
        glob.glob(osp.join(shared, 'device-cp312', '*-none-any.whl')) +
        glob.glob(osp.join(shared, 'device-cp312', '*-abi3-*.whl')))
    return mmcv[:1] + rest if mmcv and rest else []


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument(
        'out_dir',
        nargs='?',
        default='work_dirs/device_check_cpu',
        help='where the device check writes (default %(default)s)')
    args = parser.parse_args(argv)
    out = osp.abspath(args.out_dir)
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        venv = osp.join(tmp, 'venv')
        subprocess.run([sys.executable, '-m', 'venv', venv], check=True)
        python = osp.join(venv, 'bin', 'python')
        pip = subprocess.run([
            python, '-m', 'pip', 'install', '-q',
            '--disable-pip-version-check', *BARE_STACK
        ],
                             capture_output=True,
                             text=True)
        print('\n'.join(
            line for line in (pip.stdout + pip.stderr).splitlines()
            if 'is ignored: it is neither' not in line))
        if pip.returncode:
            return 'the bare stack did not install'
        subprocess.run([
            python, '-c', 'import torch, triton, numpy; print("bare stack:", '
            '"torch", torch.__version__, "triton", triton.__version__, '
            '"numpy", numpy.__version__)'
        ],
                       check=True)
        if subprocess.run([python, '-c', 'import mmcv'],
                          capture_output=True).returncode == 0:
            return ('the bare venv can import mmcv: not the stack of a bare '
                    'GPU machine')
        print(f'bare venv: {time.monotonic() - start:.0f} s', flush=True)
        checkout = osp.join(tmp, 'checkout')
        copy_checkout(checkout)
        shared = os.environ.get('MMCV_WHEELS',
                                osp.join(REPO, '..', 'shared', 'wheels'))
        wheels = device_wheels(shared)
        options = ['--cpu']
        if wheels:
            os.makedirs(osp.join(checkout, 'wheels'))
            for wheel in wheels:
                shutil.copy(wheel, osp.join(checkout, 'wheels'))
            options += ['--wheels', 'wheels']
        else:
            print(f'no mmcv wheel for this torch or no {shared}/device-cp312:'
                  ' the model parts are skipped')
        return subprocess.run([
            python,
            osp.join(checkout, '.dev_scripts', 'device_check.py'), out,
            *options
        ],
                              cwd=checkout).returncode


if __name__ == '__main__':
    sys.exit(main())
