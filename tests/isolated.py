"""Run risky calls (native kernels on hostile inputs) in a child process.

A memory error in the C++ kernel aborts the process that runs it; run in
pytest's own process it would end the whole test session with no word of
which input did it. ``Isolated`` keeps one spawned worker process, sends it
``fn(*args)`` (``fn`` importable by name), and returns the result; if the
worker dies, the call raises :class:`ChildCrashed` naming the signal and
ending with what the worker wrote to stderr (an AddressSanitizer or UBSan
report, an assertion), and the next call starts a fresh worker. The worker
inherits the environment, so a sanitizer build (``LD_PRELOAD``,
``SSANET_CPP_EXTENSION``) runs there too.
"""
import multiprocessing
import os
import signal
import tempfile
import traceback


class ChildCrashed(RuntimeError):
    """The worker process died while running a call."""


def stderr_then_abort(text):
    """What a native crash looks like: a report on stderr, then SIGABRT."""
    os.write(2, text.encode())
    os.abort()


def _serve(conn, stderr_path):
    # stderr into a file the parent reads after a crash (pytest's capture
    # of the test that started the worker would hide it)
    os.dup2(os.open(stderr_path, os.O_WRONLY | os.O_TRUNC), 2)
    while True:
        try:
            fn, args = conn.recv()
        except EOFError:
            return
        try:
            conn.send(('ok', fn(*args)))
        except BaseException as error:  # noqa: B902 (reported to the parent)
            conn.send(('error', f'{type(error).__name__}: {error}\n'
                       f'{traceback.format_exc()}'))


class Isolated:

    def __init__(self):
        self._context = multiprocessing.get_context('spawn')
        self._process = self._conn = None
        fd, self._stderr = tempfile.mkstemp(prefix='isolated-', suffix='.err')
        os.close(fd)

    def _start(self):
        self._conn, child = self._context.Pipe()
        self._process = self._context.Process(
            target=_serve, args=(child, self._stderr), daemon=True)
        self._process.start()
        child.close()

    def __call__(self, fn, *args):
        if self._process is None or not self._process.is_alive():
            self._start()
        self._conn.send((fn, args))
        try:
            status, value = self._conn.recv()
        except EOFError:
            self._process.join(10)
            code = self._process.exitcode
            self._process = None
            how = (f'killed by {signal.Signals(-code).name}'
                   if code is not None and code < 0 else f'exit code {code}')
            with open(self._stderr, errors='replace') as f:
                stderr = f.read()[-4000:]
            raise ChildCrashed(
                f'{fn.__name__}{args!r}: the worker process '
                f'died ({how}); its stderr:\n{stderr}') from None
        if status == 'error':
            raise RuntimeError(f'{fn.__name__}{args!r} raised in the worker:'
                               f' {value}')
        return value

    def close(self):
        if self._process is not None and self._process.is_alive():
            self._conn.close()
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
        self._process = None
        os.unlink(self._stderr)
