"""mmseg_ssanet.benchmark: what the analysis tools time, measure and write
with."""
import json
import sys

import pytest
import torch

from mmseg_ssanet.benchmark import (ConvFloor, PlainSNLBlock, WorkerError,
                                    interleaved, markdown_table, medians_ms,
                                    passes, peak_memory_mb, print_result,
                                    run_worker, time_passes, timing,
                                    write_outputs)
from mmseg_ssanet.benchmark.attention import (attention_inputs,
                                              attention_passes,
                                              dense_too_large)
from mmseg_ssanet.benchmark.blocks import block_ratios
from mmseg_ssanet.benchmark.plots import save_bars, save_lines


class FakeClock:
    """``time.perf_counter`` that each call of a method moves on by that
    method's next duration."""

    def __init__(self, durations):
        self.now, self.durations, self.calls = 0.0, durations, []

    def __call__(self):
        return self.now

    def method(self, name):

        def call():
            self.calls.append(name)
            self.now += self.durations[name].pop(0)

        return call


def test_interleaved_warms_up_then_runs_rounds_in_order(monkeypatch):
    clock = FakeClock({name: [1.0] * 4 for name in 'abc'})
    monkeypatch.setattr(timing.time, 'perf_counter', clock)
    prepared = []
    times = interleaved({n: clock.method(n)
                         for n in 'abc'},
                        3,
                        prepare=prepared.append)
    assert clock.calls == list('abc' * 4)  # a warm-up, then 3 rounds
    assert prepared == clock.calls
    assert times == {n: [1.0] * 3 for n in 'abc'}


def test_the_median_of_each_method_in_ms(monkeypatch):
    clock = FakeClock({'a': [9, 0.005, 0.001, 0.003], 'b': [9, 1, 2, 30]})
    monkeypatch.setattr(timing.time, 'perf_counter', clock)
    times = interleaved({n: clock.method(n) for n in 'ab'}, 3)
    assert times['a'] == pytest.approx([0.005, 0.001, 0.003])
    assert medians_ms(times) == pytest.approx({'a': 3.0, 'b': 2000.0})


def test_a_slow_method_gets_fewer_rounds_within_the_budget(monkeypatch):
    clock = FakeClock({'fast': [0.1] * 6, 'slow': [2.0] * 6})
    monkeypatch.setattr(timing.time, 'perf_counter', clock)
    times = interleaved({n: clock.method(n)
                         for n in ('fast', 'slow')},
                        5,
                        budget_s=4.0)
    assert len(times['fast']) == 5 and len(times['slow']) == 2
    assert clock.calls == ['fast', 'slow'] * 3 + ['fast'] * 3


def test_markdown_columns_headers_formats_and_missing_cells():
    rows = [dict(a=1.23456, b='x', c=3), dict(a=2.0, c=None)]
    text = markdown_table(rows, [
        'a', ('b', 'B'), ('c', 'C', '.1f'),
        ('d', 'D', lambda r: f"{r['a'] * 2:.0f}")
    ])
    assert text.splitlines() == [
        '| a | B | C | D |', '| --- | --- | --- | --- |',
        '| 1.23 | x | 3.0 | 2 |', '| 2 | - | - | 4 |'
    ]
    assert markdown_table(
        rows[1:], [('b', 'B')], missing='').splitlines()[-1] == '|  |'


def test_write_outputs_writes_text_and_json(tmp_path):
    write_outputs(
        str(tmp_path / 'new'), {
            'a.md': '| x |\n',
            'a.json': dict(rows=[1, 2])
        })
    assert (tmp_path / 'new' / 'a.md').read_text() == '| x |\n'
    assert json.loads(
        (tmp_path / 'new' / 'a.json').read_text()) == dict(rows=[1, 2])


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='Linux')
def test_cpu_peak_memory_sees_an_allocation_and_not_what_is_held():
    held = torch.ones(64 * 2**20 // 4)  # noqa: F841  (64 MB held before)

    def allocate():
        torch.ones(256 * 2**20 // 4).sum()  # 256 MB, freed at once

    grown = peak_memory_mb(allocate)
    assert 200 < grown < 400
    assert peak_memory_mb(lambda: None) < 30
    assert peak_memory_mb(allocate, held=True) > grown + 50


def test_print_result_is_what_a_worker_hands_back(capsys):
    print_result(dict(a=[1, 2]))
    line = capsys.readouterr().out
    assert line.startswith(timing.RESULT)
    assert json.loads(line[len(timing.RESULT):]) == dict(a=[1, 2])


def test_a_worker_hands_back_its_results_and_its_peak(tmp_path):
    script = tmp_path / 'tool.py'
    script.write_text(
        'import json, sys\n'
        'kind, spec = sys.argv[2], json.loads(sys.argv[3])\n'
        'if kind == "fail":\n'
        '    raise SystemExit("no such pass")\n'
        'block = bytearray(spec["mb"] * 2**20)\n'
        'print("chatter")\n'
        f'print({timing.RESULT!r} + json.dumps(dict(kind=kind)))\n'
        f'print({timing.RESULT!r} + json.dumps(spec["mb"]))\n')
    # more than this process holds, which Linux counts into a child's
    # peak (run_worker's docstring)
    found, peak_mb = run_worker(str(script), 'alloc', dict(mb=1000))
    assert found == [dict(kind='alloc'), 1000]
    assert 1000 < peak_mb < 1100
    with pytest.raises(WorkerError, match='fail worker: no such pass'):
        run_worker(str(script), 'fail', {})


def test_the_floor_and_the_plain_block_run_both_passes():
    torch.manual_seed(0)
    block = PlainSNLBlock(8, (3, 3), backend='reference')
    floor, separate = (
        ConvFloor(block.projections(), block.gamma, fused)
        for fused in (True, False))
    x = torch.randn(1, 8, 5, 6)
    assert torch.allclose(floor(x)[0], separate(x)[0], atol=1e-5)
    for module in (block, floor):
        for fn in passes(module, x).values():
            fn()
        assert all(p.grad is None for p in module.parameters())


def test_time_passes_times_each_pass_and_says_why_a_method_did_not_run(
        monkeypatch):
    clock = FakeClock({
        'a.forward': [1.0] * 5,
        'a.forward_backward': [3.0] * 5
    })
    monkeypatch.setattr(timing.time, 'perf_counter', clock)

    def out_of_memory():
        raise RuntimeError('CUDA out of memory. Tried to allocate 9 GB\nmore')

    rows = time_passes(
        {
            'a': {
                p: clock.method(f'a.{p}')
                for p in ('forward', 'forward_backward')
            },
            'big': {
                'forward': out_of_memory
            }
        }, 3)
    # the first call of each pass is its check, the second its warm-up
    assert clock.calls == ['a.forward', 'a.forward_backward'] * 5
    assert rows['a'] == dict(
        forward_ms=1000.0,
        forward_runs=3,
        forward_backward_ms=3000.0,
        forward_backward_runs=3)
    assert rows['big'] == dict(
        skipped='CUDA out of memory. Tried to allocate 9 GB')


def test_attention_inputs_passes_and_the_dense_limit():
    q, k, v, off = attention_inputs(2, (4, 6), (3, 5), 9, torch.bfloat16,
                                    'cpu')
    assert [tuple(x.shape) for x in (q, k, v, off)] == [(2, 4, 3, 5),
                                                        (2, 4, 3, 5),
                                                        (2, 6, 3, 5),
                                                        (2, 18, 3, 5)]
    assert q.dtype == torch.bfloat16 and off.dtype == torch.float32
    assert q.is_contiguous(memory_format=torch.channels_last)
    again = attention_inputs(2, (4, 6), (3, 5), 9, torch.bfloat16, 'cpu')
    assert all(torch.equal(a, b) for a, b in zip((q, k, v, off), again))
    seen = []
    calls = attention_passes(lambda *xs: seen.append(xs) or xs[2] * 2,
                             [q, k, v, off])
    calls['forward']()
    assert not seen[-1][2].requires_grad
    calls['forward_backward']()
    assert seen[-1][2].grad is not None
    assert list(attention_passes(None, [q], ['forward'])) == ['forward']
    # 1 x 15 x 15 x 4 bytes = 900
    assert dense_too_large(1, (3, 5), 900) == ''
    assert dense_too_large(1, (3, 5), 899) == \
        'N x N matrix 900 B > --max-dense-bytes'


def test_block_ratios_are_the_measured_times_divided():
    group = dict(size_name='64x128', channels=8, batch=1)
    rows = [
        dict(group, method='snl', forward_ms=2.0, peak_mem_mb=10.0),
        dict(group, method='floor', forward_ms=0.5),
        dict(group, method='nonlocal2d', forward_ms=8.0, peak_mem_mb=40.0),
        dict(group, size_name='128x256', method='snl', forward_ms=7.0)
    ]
    table = {r['what']: r['values'] for r in block_ratios(rows)}
    assert rows[0]['forward_ratio'] == 0.25
    assert rows[0]['peak_mem_ratio'] == 0.25
    assert 'forward_ratio' not in rows[3]  # no NonLocal2d at 128x256
    assert table['SNL fwd / floor'] == {'64x128': 4.0, '128x256': None}
    assert table['SNL fwd time 128x256 / 64x128'] == {'': 3.5}


def test_plots_are_written(tmp_path):
    save_lines({
        'a': ('-o', [(2, 1.0), (1, 3.0)]),
        'none': ('-', [])
    }, str(tmp_path / 'lines.png'), 't', 'x', 'y')
    save_bars(['p', 'q'], {
        'one': [1.0, 2.0],
        'two': [0.5, 1.5]
    }, str(tmp_path / 'bars.png'), 't', 'y')
    assert all((tmp_path / f).stat().st_size > 1000
               for f in ('lines.png', 'bars.png'))
