"""The backward variants' benchmark (the device check's first timing part)
end to end under the interpreter at a tiny size."""
import json

import pytest

from .conftest import run_cli

pytestmark = pytest.mark.triton  # the kernels under the interpreter


def test_every_variant_is_timed_beside_dense_attention(tmp_path):
    code, log = run_cli([
        'python', 'tools/analysis_tools/benchmark_triton_variants.py',
        '--device', 'cpu', '--maps', '4x5:2', '3x3', '--channels', '4,6',
        '--k', '9', '--dtypes', 'fp32', '--repeats', '1', '--out',
        str(tmp_path)
    ])
    assert code == 0, log[-2000:]
    rows = json.loads((tmp_path / 'variants.json').read_text())
    methods = {
        'triton, atomic backward', 'triton, sorted backward',
        'triton, halo backward', 'dense torch', 'triton, gather forward',
        'triton, halo forward', 'triton, halo forward, sorted backward',
        'triton, halo forward, halo backward',
        'triton, halo forward, halo backward, deterministic'
    }
    assert [(r['map'], r['batch']) for r in rows] == \
        [('4x5', 2)] * 9 + [('3x3', 1)] * 9
    assert {r['method'] for r in rows} == methods
    for r in rows:
        key = 'forward_ms' if r['method'].endswith('forward') else \
            'forward_backward_ms'
        assert r[key] > 0, r
    assert '| 4x5 | 2 | 4, 6 | fp32 | triton, sorted backward |' in \
        (tmp_path / 'variants.md').read_text()


def test_a_map_too_large_for_dense_attention_is_said(tmp_path):
    code, log = run_cli([
        'python', 'tools/analysis_tools/benchmark_triton_variants.py',
        '--device', 'cpu', '--maps', '3x4', '--channels', '2,3', '--k', '9',
        '--dtypes', 'fp32', '--repeats', '1', '--max-dense-bytes', '100',
        '--only', 'dense torch', 'triton, halo forward', '--out',
        str(tmp_path)
    ])
    assert code == 0, log[-2000:]
    rows = json.loads((tmp_path / 'variants.json').read_text())
    assert [r['method']
            for r in rows] == ['dense torch', 'triton, halo forward']
    dense, snl = rows
    assert dense['skipped'] == 'N x N matrix 576 B > --max-dense-bytes'
    assert 'forward_backward_ms' not in dense
    assert snl['forward_ms'] > 0


def test_only_names_rows_of_the_table(tmp_path):
    code, log = run_cli([
        'python', 'tools/analysis_tools/benchmark_triton_variants.py',
        '--device', 'cpu', '--maps', '3x4', '--only', 'triton, warp backward'
    ])
    assert code != 0
    assert "--only 'triton, warp backward': no such row" in log
    assert "'triton, halo backward'" in log  # the names to choose from
