"""What the benchmarks in ``tools/analysis_tools`` share (torch only).

* :mod:`.baselines`: what the SNL block is measured against (its 1x1-conv
  floor, dense non-local attention) and the passes every benchmark times;
* :mod:`.blocks`: those blocks and the SNL block by name
  (``benchmark_snl.py``);
* :mod:`.attention`: the operator's inputs and passes, dense attention
  beside it (the GPU tools);
* :mod:`.timing`: interleaved rounds over several methods, the median per
  method, and measurements in a worker process of their own;
* :mod:`.memory`: peak memory of a call (CPU resident set, CUDA allocator);
* :mod:`.tables`: Markdown tables from rows of dicts, and the files a tool
  writes; :mod:`.plots`: its figures.

mmcv and mmseg are not imported (``blocks`` takes mmcv's ``NonLocal2d``
when asked for it): the GPU tools and the thread benchmark run on a machine
with torch alone.
"""
from .attention import (attention_inputs, attention_passes, dense_too_large,
                        first_sdpa_backend)
from .baselines import (ConvFloor, DenseNonLocal, PlainSNLBlock,
                        dense_attention, passes, sdpa_attention)
from .blocks import BLOCKS, MAP_SIZES, block_ratios, build_block, estimate_gb
from .memory import peak_memory_mb
from .plots import save_bars, save_lines
from .tables import markdown_table, write_outputs
from .timing import (WorkerError, interleaved, medians_ms, print_result,
                     run_worker, time_passes, timed)

__all__ = [
    'attention_inputs', 'attention_passes', 'dense_too_large',
    'first_sdpa_backend', 'BLOCKS', 'MAP_SIZES', 'block_ratios', 'build_block',
    'estimate_gb', 'save_bars', 'save_lines', 'time_passes', 'ConvFloor',
    'DenseNonLocal', 'PlainSNLBlock', 'dense_attention', 'sdpa_attention',
    'passes', 'timed', 'interleaved', 'medians_ms', 'run_worker',
    'print_result', 'WorkerError', 'peak_memory_mb', 'markdown_table',
    'write_outputs'
]
