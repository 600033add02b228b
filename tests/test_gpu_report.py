"""tools/analysis_tools/gpu_report.py end to end at a tiny size, on CPU
tensors under Triton's interpreter (conftest sets TRITON_INTERPRET=1): the
GPU report is not dead code, and what it reports here is checked. Run as on
a bare GPU machine: from the checkout, the package not installed."""
import json

import pytest
import torch

from .conftest import run_from_plain_checkout
from .ops_cases import HALF_TOLERANCE, OFFSET_GRAD_TOLERANCE

pytestmark = pytest.mark.triton


def test_gpu_report_runs_end_to_end_on_the_interpreter(tmp_path):
    code, log = run_from_plain_checkout(
        'tools/analysis_tools/gpu_report.py', [
            '--device', 'cpu', '--sizes', '6x8', '--batches', '1', '--dtypes',
            'fp32', '--cq', '4', '--c', '6', '--k', '9', '--check-size', '5x6',
            '--repeats', '1', '--archs', '90', '--out',
            str(tmp_path)
        ],
        cwd=str(tmp_path))
    assert code == 0, log[-3000:]
    report = json.loads((tmp_path / 'report.json').read_text())
    errors = {(r['backend'], r['dtype']): r for r in report['correctness']}
    fields = ('out', 'grad_query', 'grad_key', 'grad_value', 'grad_offset')
    checked = ('cpp', 'triton', 'triton, gather forward',
               'triton, sorted backward', 'triton, atomic backward', 'csr',
               'reference')
    for backend in checked:  # all run on CPU
        assert max(errors[backend, 'fp64'][f] for f in fields) < 1e-12
        assert max(errors[backend, 'fp32'][f] for f in fields) < 1e-5
    # half inputs, float32 arithmetic, results rounded to 8 / 11 bits (the
    # offset's gradient: float32), as the operator's own test holds them
    for backend in checked:
        for half, dtype in (('bf16', torch.bfloat16), ('fp16', torch.float16)):
            row = errors[backend, half]
            assert 0 < max(row[f] for f in fields[:4]) < HALF_TOLERANCE[dtype]
            assert row['grad_offset'] < OFFSET_GRAD_TOLERANCE
    # under deterministic algorithms the defaults (halo) and the gather
    # forward with the sorted backward are bitwise reproducible
    assert {(r['variants'], r['deterministic_algorithms'], r['bitwise_equal'])
            for r in report['determinism']} >= {('default', True, True),
                                                ('gather, sorted', True, True)}
    timed = {r['method']: r for r in report['timing']}
    assert set(timed) == {
        'triton, gather forward', 'triton, halo forward',
        'triton, halo forward, sorted backward',
        'triton, halo forward, halo backward',
        'triton, halo forward, halo backward, deterministic',
        'triton, sorted backward', 'triton, atomic backward',
        'triton, halo backward', 'snl reference', 'dense torch', 'dense sdpa'
    }
    for name, row in timed.items():
        assert row['forward_backward_ms' if 'backward' in
                   name else 'forward_ms'] > 0, row
    assert timed['dense sdpa']['sdpa_backend'] not in ('none', None)
    assert {r['kernel']
            for r in report['resources']} == {
                'forward', 'halo_forward', 'backward',
                'backward_deterministic', 'segment_sum', 'halo_points',
                'halo_gradients', 'halo_key_value'
            }
    for r in report['resources']:
        assert r['target'] == 'sm_90a' and r['spill_store_bytes'] == 0
    text = (tmp_path / 'report.md').read_text()
    assert '## Correctness' in text and '| triton, sorted backward |' in text
