"""The developer scripts of ``.dev_scripts/``: what they decide before any
long run. Their whole runs are CI's own steps (``make kernel-check``,
``make device-rehearsal``, ``make compat-check``)."""
import os.path as osp
import subprocess
import sys
import time

import pytest

from .conftest import ROOT

SCRIPTS = osp.join(ROOT, '.dev_scripts')


@pytest.fixture(scope='module')
def dev_common():
    sys.path.insert(0, SCRIPTS)
    try:
        import dev_common
        yield dev_common
    finally:
        sys.path.remove(SCRIPTS)


def _script(name, *args):
    return subprocess.run(
        [sys.executable, osp.join(SCRIPTS, name), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120)


def test_a_command_past_its_limit_is_killed_with_its_children(
        dev_common, tmp_path):
    # a launcher's workers would outlive a plain kill of the launcher
    log = tmp_path / 'log'
    pid_file = tmp_path / 'child.pid'
    start = time.monotonic()
    status = dev_common.run_logged(
        ['bash', '-c', f'sleep 60 & echo $! > {pid_file}; echo started; wait'],
        str(log),
        timeout=2)
    assert status == dev_common.TIMED_OUT
    assert time.monotonic() - start < 30
    assert 'started' in log.read_text()
    child = int(pid_file.read_text())
    time.sleep(0.5)
    assert not osp.exists(f'/proc/{child}') or \
        'zombie' in open(f'/proc/{child}/status').read().lower(), \
        'the command\'s child outlived the time limit'
    assert dev_common.outcome(status) == 'TIMED OUT'
    assert dev_common.outcome(0) == 'passed'
    assert dev_common.outcome(3) == 'FAILED (exit 3)'


def test_the_checkout_copy_holds_the_tracked_files_and_no_git(
        dev_common, tmp_path):
    dev_common.copy_checkout(str(tmp_path))
    assert (tmp_path / 'setup.py').is_file()
    assert (tmp_path / '.dev_scripts' / 'device_check.py').is_file()
    assert not (tmp_path / '.git').exists()
    assert not (tmp_path / '.venv').exists()  # ignored


def test_check_kernel_says_which_variants_this_cpu_runs():
    # the baseline runs on every x86-64; the others per /proc/cpuinfo
    assert _script('check_kernel.py', '--runs', 'x86-64').returncode == 0
    flags = open('/proc/cpuinfo').read()
    v3 = all(f' {f}' in flags for f in ('avx2', 'fma', 'bmi1', 'bmi2', 'f16c',
                                        'movbe', 'abm', 'xsave'))
    assert (_script('check_kernel.py', '--runs',
                    'x86-64-v3').returncode == 0) == v3
    bad = _script('check_kernel.py', 'x86-64-v9')
    assert bad.returncode == 2 and 'unknown ISA x86-64-v9' in bad.stderr


def test_device_check_refuses_a_wheel_folder_without_wheels(tmp_path):
    proc = _script('device_check.py', str(tmp_path / 'out'), '--wheels',
                   str(tmp_path))
    assert proc.returncode == 2
    assert f'--wheels {tmp_path}: no .whl files there' in proc.stderr
    assert not (tmp_path / 'out').exists()  # stopped before any part


def test_compat_check_refuses_an_unknown_stack(tmp_path):
    proc = _script('compat_check.py', str(tmp_path), '--stacks', 'py27')
    assert proc.returncode == 2 and "invalid choice: 'py27'" in proc.stderr
