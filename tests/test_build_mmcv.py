"""tools/misc/build_mmcv.py: the mmcv 2.1.0 source `make env` builds when no
wheel fits, with the fixes newer Pythons need."""
import glob
import importlib.util
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest

from .conftest import ROOT

TOOL = osp.join(ROOT, 'tools', 'misc', 'build_mmcv.py')


def _tool():
    spec = importlib.util.spec_from_file_location('build_mmcv', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pythons_from_313():
    """Interpreters of Python 3.13 and newer on this machine (pyenv's, the
    PATH's, the running one): where the unfixed source fails."""
    found = set()
    if sys.version_info >= (3, 13):
        found.add(sys.executable)
    root = os.environ.get('PYENV_ROOT', osp.expanduser('~/.pyenv'))
    for minor in range(13, 20):
        found.update(
            glob.glob(
                osp.join(root, 'versions', f'3.{minor}.*', 'bin',
                         f'python3.{minor}')))
        on_path = shutil.which(f'python3.{minor}')
        if on_path and subprocess.run([on_path, '-V'],
                                      capture_output=True).returncode == 0:
            found.add(on_path)
    return sorted(found)


def _read_version(python, source_dir):
    """What setup.py's get_version() returns under `python`, run alone
    (the rest of setup.py imports torch and builds)."""
    program = (
        'import ast, sys\n'
        'tree = ast.parse(open("setup.py").read())\n'
        'fn = [n for n in tree.body if isinstance(n, ast.FunctionDef) and '
        'n.name == "get_version"]\n'
        'ns = {}\n'
        'exec(compile(ast.Module(fn, []), "setup.py", "exec"), ns)\n'
        'print(ns["get_version"]())\n')
    return subprocess.run([python, '-c', program],
                          cwd=source_dir,
                          capture_output=True,
                          text=True)


def _fake_source(tmp_path, setup_text):
    (tmp_path / 'setup.py').write_text(setup_text)
    return str(tmp_path)


def test_a_fix_applies_once_and_refuses_a_source_it_was_not_written_for(
        tmp_path):
    tool = _tool()
    fix = tool.SOURCE_FIXES[0]
    source = _fake_source(
        tmp_path, 'def get_version():\n    with open(\n'
        '            "v") as f:\n' + fix.old)
    assert tool.apply_fixes(source) == [fix.name]
    fixed = (tmp_path / 'setup.py').read_text()
    assert fix.new in fixed and fix.old not in fixed
    assert tool.apply_fixes(source) == [fix.name]  # already in place
    assert (tmp_path / 'setup.py').read_text() == fixed

    (tmp_path / 'setup.py').write_text('def get_version():\n    return 1\n')
    with pytest.raises(tool.BuildError, match=fix.name):
        tool.apply_fixes(source)


def test_the_fixed_source_reads_its_version_on_every_python(tmp_path):
    """The real source, downloaded by pip against its pinned hash: with the
    fixes its setup.py reads the version on the running Python and on 3.13+
    (where the unfixed one raises KeyError: PEP 667)."""
    tool = _tool()
    result = subprocess.run(
        [sys.executable, TOOL, '--out',
         str(tmp_path), '--source-only'],
        capture_output=True,
        text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    source = osp.join(tmp_path, f'mmcv-{tool.MMCV_VERSION}')
    assert source in result.stdout
    assert not glob.glob(osp.join(tmp_path, 'tmp*')), 'scratch left behind'

    newer = _pythons_from_313()
    for python in [sys.executable] + newer:
        read = _read_version(python, source)
        assert read.stdout.strip() == tool.MMCV_VERSION, (python, read.stderr)

    # the same source with the fix taken back: broken where PEP 667 holds
    fix = tool.SOURCE_FIXES[0]
    setup = osp.join(source, fix.path)
    with open(setup) as f:
        text = f.read()
    with open(setup, 'w') as f:
        f.write(text.replace(fix.new, fix.old))
    for python in newer:
        read = _read_version(python, source)
        assert read.returncode != 0 and "KeyError: '__version__'" in \
            read.stderr, python


def test_a_source_that_cannot_be_had_is_named(tmp_path, monkeypatch):
    tool = _tool()
    monkeypatch.setattr(tool, 'MMCV_SDIST_SHA256', '0' * 64)
    with pytest.raises(tool.BuildError, match='could not download mmcv'):
        tool.prepare_source(str(tmp_path))
