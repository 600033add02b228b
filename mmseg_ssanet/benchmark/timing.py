"""Timing: interleaved rounds over several methods, and worker processes.

Every benchmark times its methods round by round, each method once a round
(a disturbance of the machine then hits all alike), and reports the median
of each. A measurement that must not share a process with the others (peak
memory, a deployment without torch) runs in a worker: the tool run again
with ``--worker KIND SPEC``, printing its results with :func:`print_result`.
"""
import json
import os
import statistics
import subprocess
import sys
import time
from typing import (Any, Callable, Dict, Hashable, List, Optional, Sequence,
                    Tuple)

import torch

RESULT = 'RESULT '  # the prefix of a worker's result lines


def timed(fn: Callable[[], Any], device='cpu') -> float:
    """Seconds one call of ``fn`` takes.

    Args:
        fn (Callable): what to time, called without arguments.
        device (str | torch.device): ``cpu``: the wall clock; ``cuda``: CUDA
            events around the call on the current stream (the GPU's time,
            launch gaps included).
    """
    if torch.device(device).type == 'cuda':
        start, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(
    fns: Dict[Hashable, Callable[[], Any]],
    repeats: int,
    device='cpu',
    budget_s: Optional[float] = None,
    prepare: Optional[Callable[[Hashable], Any]] = None
) -> Dict[Hashable, List[float]]:
    """Times each method of ``fns`` in rounds, interleaved.

    Each method is called once first (the allocator, oneDNN primitives,
    Triton's compilation); then each round calls every method once, in the
    order of ``fns``.

    Args:
        fns (dict): a name for each method -> the call to time.
        repeats (int): rounds.
        device (str | torch.device): where the methods run (:func:`timed`).
        budget_s (float, optional): a method whose first call took t
            seconds runs at most ``budget_s / t`` rounds (at least one).
        prepare (Callable, optional): called with a method's name before
            each of its calls, outside the time (setting the threads).

    Returns:
        dict: the name of each method -> seconds of each round it ran.
    """
    rounds = {}
    for name, fn in fns.items():
        if prepare:
            prepare(name)
        first = timed(fn, device)
        rounds[name] = repeats if budget_s is None else max(
            1, min(repeats, int(budget_s / max(first, 1e-6))))
    times = {name: [] for name in fns}
    for r in range(max(rounds.values(), default=0)):
        for name, fn in fns.items():
            if r < rounds[name]:
                if prepare:
                    prepare(name)
                times[name].append(timed(fn, device))
    return times


def medians_ms(times: Dict[Hashable, List[float]]) -> Dict[Hashable, float]:
    """The median of each method's seconds (:func:`interleaved`), in ms."""
    return {name: 1e3 * statistics.median(ts) for name, ts in times.items()}


def time_passes(
    methods: Dict[str, Dict[str, Callable[[], Any]]],
    repeats: int,
    device='cpu',
    budget_s: Optional[float] = None,
    peak_of: Sequence[str] = ()
) -> Dict[str, dict]:
    """Times the passes of several methods in interleaved rounds.

    A method whose first call of a pass raises (out of memory, a backend
    missing here) is not timed; its row says why.

    Args:
        methods (dict): a method's name -> its passes, ``{pass: call}``
            (``forward``, ``forward_backward``).
        repeats (int): rounds (:func:`interleaved`).
        device (str | torch.device): where the methods run.
        budget_s (float, optional): fewer rounds for a slow pass
            (:func:`interleaved`).
        peak_of (Sequence[str]): passes whose peak memory is measured too
            (``peak_mb``, :func:`~.memory.peak_memory_mb`), in this process:
            on CUDA; on CPU a worker process does it better.

    Returns:
        dict: a method's name -> ``{'<pass>_ms': median, '<pass>_runs':
        rounds}`` and ``peak_mb``, or ``{'skipped': the error's first
        line}``.
    """
    from .memory import peak_memory_mb
    rows = {name: {} for name in methods}
    fns = {}
    for name, calls in methods.items():
        try:
            for call in calls.values():
                call()
        except RuntimeError as err:  # out of memory is one too
            rows[name]['skipped'] = str(err).split('\n')[0][:120]
            continue
        fns.update({(name, p): call for p, call in calls.items()})
    times = interleaved(fns, repeats, device=device, budget_s=budget_s)
    for (name, p), ms in medians_ms(times).items():
        rows[name].update({f'{p}_ms': ms, f'{p}_runs': len(times[name, p])})
        if p in peak_of:
            rows[name]['peak_mb'] = peak_memory_mb(fns[name, p], device)
    return rows


class WorkerError(RuntimeError):
    """A worker failed; the message is its last line of output, ``output``
    all of it."""

    def __init__(self, message: str, output: str):
        super().__init__(message)
        self.output = output


def print_result(value) -> None:
    """In a worker: hands ``value`` (JSON) back to :func:`run_worker`."""
    print(RESULT + json.dumps(value), flush=True)


def run_worker(script: str, kind: str, spec) -> Tuple[List[Any], float]:
    """Runs ``python script --worker KIND SPEC`` in a fresh process.

    Args:
        script (str): the tool, which answers ``--worker``.
        kind (str): what the worker measures.
        spec: the worker's parameters (JSON).

    Returns:
        tuple: the values the worker printed with :func:`print_result`, in
        order, and the peak resident set of its process in MB
        (``ru_maxrss``; Linux counts the resident set of this process at
        the start in too, so it is a floor of what this reports).

    Raises:
        WorkerError: the worker failed or printed no result.
    """
    proc = subprocess.Popen(
        [sys.executable, script, '--worker', kind,
         json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True)
    with proc.stdout:
        output = proc.stdout.read()
    # wait4: the resource usage of this one child (getrusage's
    # RUSAGE_CHILDREN is the largest over all children so far)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    found = [
        json.loads(line[len(RESULT):]) for line in output.splitlines()
        if line.startswith(RESULT)
    ]
    if proc.returncode or not found:
        last = (output.strip().splitlines()[-1:]
                or [f'exit {proc.returncode}'])[0]
        raise WorkerError(f'{kind} worker: {last}', output)
    return found, usage.ru_maxrss / 1024
