"""What the benchmarks in ``tools/analysis_tools`` share (torch only).

* :mod:`.baselines`: what the SNL block is measured against (its 1x1-conv
  floor, dense non-local attention) and the passes every benchmark times;
* :mod:`.timing`: interleaved rounds over several methods, the median per
  method, and measurements in a worker process of their own;
* :mod:`.memory`: peak memory of a call (CPU resident set, CUDA allocator);
* :mod:`.tables`: Markdown tables from rows of dicts, and the files a tool
  writes.

mmcv and mmseg are not imported: the GPU report and the thread benchmark
run on a machine with torch alone.
"""
from .baselines import (ConvFloor, DenseNonLocal, PlainSNLBlock,
                        dense_attention, passes, sdpa_attention)
from .memory import peak_memory_mb
from .tables import markdown_table, write_outputs
from .timing import (WorkerError, interleaved, medians_ms, print_result,
                     run_worker, timed)

__all__ = [
    'ConvFloor', 'DenseNonLocal', 'PlainSNLBlock', 'dense_attention',
    'sdpa_attention', 'passes', 'timed', 'interleaved', 'medians_ms',
    'run_worker', 'print_result', 'WorkerError', 'peak_memory_mb',
    'markdown_table', 'write_outputs'
]
