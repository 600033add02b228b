"""What the developer scripts share: commands under a time limit with
their output in a log, a copy of the checkout, interpreters by version.

Standard library only: the device check runs it on a bare GPU machine.
"""
import argparse
import os
import os.path as osp
import shutil
import signal
import subprocess
import time

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..'))
TIMED_OUT = 124  # the exit status `timeout` gives, kept for the summaries


def run_logged(cmd, log, timeout=None, env=None, cwd=REPO, stdin=None):
    """Run ``cmd`` with stdout and stderr appended to the file ``log``.

    Returns its exit status, or ``TIMED_OUT`` after killing its whole
    process group (a training launcher's workers included) when it runs
    past ``timeout`` seconds.
    """
    with open(log, 'a') as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=stdin,
            env=env,
            cwd=cwd,
            start_new_session=True)
        return wait_or_kill(proc, timeout)


def wait_or_kill(proc, timeout):
    """``proc``'s exit status, or ``TIMED_OUT`` once it was killed."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, None)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        return TIMED_OUT


def outcome(status):
    """An exit status in a summary's words."""
    if status == 0:
        return 'passed'
    if status in (TIMED_OUT, -9, 137):
        return 'TIMED OUT'
    return f'FAILED (exit {status})'


def last_line(path, width=300):
    """The last non-empty line of a log, fit for a Markdown table cell."""
    try:
        with open(path, errors='replace') as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return ''
    return lines[-1].replace('|', '/')[:width] if lines else ''


def copy_checkout(dest):
    """Copy the working tree's files (tracked and untracked, not ignored)
    to ``dest``, as an sdist would carry them: no ``.git``."""
    listed = subprocess.run([
        'git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'
    ],
                            cwd=REPO,
                            check=True,
                            capture_output=True).stdout.decode().split('\0')
    for rel in filter(None, listed):
        src = osp.join(REPO, rel)
        if not osp.isfile(src):  # deleted in the working tree
            continue
        target = osp.join(dest, rel)
        os.makedirs(osp.dirname(target), exist_ok=True)
        shutil.copy2(src, target)


def python_of(version):
    """The interpreter for a Python version (``'3.11'``), from pyenv or
    PATH; None when neither has it."""
    root = os.environ.get('PYENV_ROOT', osp.expanduser('~/.pyenv'))
    versions = osp.join(root, 'versions')
    if osp.isdir(versions):
        for name in sorted(os.listdir(versions)):
            candidate = osp.join(versions, name, 'bin', f'python{version}')
            if name.startswith(version + '.') and os.access(
                    candidate, os.X_OK):
                return candidate
    return shutil.which(f'python{version}')


class Clock:
    """Seconds since it started, and what a budget has left."""

    def __init__(self, budget=None):
        self.start = time.monotonic()
        self.budget = budget

    def elapsed(self):
        return int(time.monotonic() - self.start)

    def box(self, wanted):
        """A part's time limit: what it asks for, at most what is left."""
        return min(wanted, self.budget - self.elapsed())


def argument_parser(doc):
    """A script's parser: its docstring's first line as the description,
    the rest (usage, variables) shown under ``--help`` as written."""
    return argparse.ArgumentParser(
        description=doc.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=doc.split('\n\n', 1)[1])
