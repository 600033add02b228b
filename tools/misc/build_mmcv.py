"""Build mmcv 2.1.0 with its compiled ops from PyPI's source, as a wheel.

Example::

    python tools/misc/build_mmcv.py --out work_dirs/mmcv_wheels
    python tools/misc/build_mmcv.py --out work_dirs/mmcv_src --source-only

PyPI has only mmcv's source, and OpenMMLab's prebuilt 2.1.0 wheels stop at
Python 3.11 and torch 2.1. ``make env`` runs this when no wheel fits the
interpreter and torch: pip downloads the source (the exact file, checked by
its hash), the fixes below are applied to it, and
``MMCV_WITH_OPS=1 pip wheel --no-build-isolation`` compiles it against the
torch installed in the running interpreter's environment (10-40 minutes on
2 cores). The wheel lands in ``--out``; install it with
``pip install --find-links OUT mmcv==2.1.0``.

The fixes (``SOURCE_FIXES``), each a literal replacement that must find
its text: on a source without that text the build stops and names the
fix, rather than build something else.

- ``pep667-version-lookup``: ``setup.py``'s ``get_version()`` runs
  ``exec`` on ``mmcv/version.py`` and then reads ``locals()``. Since
  Python 3.13 (PEP 667) ``locals()`` in a function is a fresh snapshot that
  does not see what ``exec`` defined, so pip stops with
  ``KeyError: '__version__'`` ("metadata-generation-failed"). The fix gives
  ``exec`` an explicit namespace. It is harmless on older Pythons and is
  applied on every one, so that each builds the same source.
"""
import argparse
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
from typing import NamedTuple

MMCV_VERSION = '2.1.0'
# PyPI's mmcv-2.1.0.tar.gz: the source the fixes are written against.
MMCV_SDIST_SHA256 = ('d387bcab66b467479b6660310e23746c'
                     'fc79c6e57acf04094680adb499a5cd3f')


class SourceFix(NamedTuple):
    name: str
    path: str  # relative to the source's root
    old: str
    new: str


SOURCE_FIXES = (SourceFix(
    name='pep667-version-lookup',
    path='setup.py',
    old=("        exec(compile(f.read(), version_file, 'exec'))\n"
         "    return locals()['__version__']\n"),
    new=("        namespace = {}\n"
         "        exec(compile(f.read(), version_file, 'exec'), namespace)\n"
         "    return namespace['__version__']\n")), )


class BuildError(RuntimeError):
    """The source could not be fetched, fixed or built; the message says
    which step and why."""


def apply_fixes(source_dir, fixes=SOURCE_FIXES):
    """Apply each fix to the source tree in place; returns the names of
    the fixes applied (a fix already in place counts as applied)."""
    applied = []
    for fix in fixes:
        path = osp.join(source_dir, fix.path)
        with open(path, encoding='utf-8') as f:
            text = f.read()
        if fix.old in text:
            text = text.replace(fix.old, fix.new, 1)
            with open(path, 'w', encoding='utf-8') as f:
                f.write(text)
        elif fix.new not in text:
            raise BuildError(
                f'mmcv source fix {fix.name!r}: {fix.path} does not hold the '
                f'text it replaces; this is not the mmcv {MMCV_VERSION} '
                f'source the fix was written for')
        applied.append(fix.name)
    return applied


def download_source(work_dir):
    """mmcv's source tree, as pip unpacked it, under ``work_dir``.

    pip checks the file against its hash. It then prepares the package's
    metadata by running ``setup.py``, which fails on Python 3.13 before the
    fix can be applied; ``--no-clean`` keeps the unpacked tree either way,
    in pip's temporary folder, which is pointed into ``work_dir``.
    """
    pip_tmp = osp.join(work_dir, 'pip-tmp')
    os.makedirs(pip_tmp, exist_ok=True)
    pinned = osp.join(work_dir, 'mmcv-source.txt')
    with open(pinned, 'w') as f:
        f.write(f'mmcv=={MMCV_VERSION} --hash=sha256:{MMCV_SDIST_SHA256}\n')
    result = subprocess.run([
        sys.executable, '-m', 'pip', 'download', '--disable-pip-version-check',
        '--no-clean', '--no-deps', '--no-binary', 'mmcv',
        '--no-build-isolation', '--require-hashes', '-r', pinned, '-d',
        osp.join(work_dir, 'download')
    ],
                            env=dict(os.environ, TMPDIR=pip_tmp),
                            capture_output=True,
                            text=True)
    trees = [
        osp.dirname(p) for p in glob.glob(
            osp.join(pip_tmp, 'pip-download-*', 'mmcv_*', 'setup.py'))
    ]
    if len(trees) != 1:
        said = '\n'.join((result.stdout + result.stderr).splitlines()[-15:])
        raise BuildError(
            f'pip could not download mmcv {MMCV_VERSION}\'s source '
            f'(pip exited with {result.returncode}):\n{said}')
    return trees[0]


def prepare_source(out_dir):
    """Download mmcv's source and apply the fixes: the tree to build, at
    ``out_dir/mmcv-<version>``."""
    os.makedirs(out_dir, exist_ok=True)
    source = osp.join(out_dir, f'mmcv-{MMCV_VERSION}')
    with tempfile.TemporaryDirectory(dir=out_dir) as work_dir:
        unpacked = download_source(work_dir)
        shutil.rmtree(source, ignore_errors=True)
        shutil.copytree(
            unpacked, source, ignore=shutil.ignore_patterns('*.egg-info'))
    apply_fixes(source)
    return source


def build_wheel(source, out_dir):
    """Compile the ops and write the wheel into ``out_dir``; its path."""
    env = dict(os.environ, MMCV_WITH_OPS='1')
    result = subprocess.run([
        sys.executable, '-m', 'pip', 'wheel', '--disable-pip-version-check',
        '--no-build-isolation', '--no-deps', '-w', out_dir, source
    ],
                            env=env)
    wheels = glob.glob(osp.join(out_dir, f'mmcv-{MMCV_VERSION}-*.whl'))
    if result.returncode != 0 or not wheels:
        raise BuildError(f'building mmcv {MMCV_VERSION} from {source} '
                         f'failed (pip exited with {result.returncode}); '
                         f'its output is above')
    return max(wheels, key=osp.getmtime)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--out',
        required=True,
        help='folder for the wheel (with --source-only: for '
        'the fixed source tree)')
    parser.add_argument(
        '--source-only',
        action='store_true',
        help='download and fix the source, do not compile')
    args = parser.parse_args(argv)
    out = osp.abspath(args.out)
    try:
        import torch  # noqa: F401  (mmcv's ops compile against it)
    except ImportError:
        if not args.source_only:
            parser.error('torch must be installed first: mmcv\'s ops are '
                         'compiled against it')
    try:
        with tempfile.TemporaryDirectory() as scratch:
            source = prepare_source(out if args.source_only else scratch)
            print(f'mmcv {MMCV_VERSION} source with fixes '
                  f'{", ".join(f.name for f in SOURCE_FIXES)}: {source}')
            if not args.source_only:
                os.makedirs(out, exist_ok=True)
                print(f'wheel: {build_wheel(source, out)}')
    except BuildError as e:
        sys.exit(f'build_mmcv: {e}')


if __name__ == '__main__':
    main()
