"""ablation_miniature.py: the multi-seed Table 1 on cue scenes."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest

from tests.conftest import ROOT, run_cli

TOOL = 'projects/cue_scenes/tools/ablation_miniature.py'
_spec = importlib.util.spec_from_file_location('ablation_miniature',
                                               osp.join(ROOT, TOOL))
ablation = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ablation)

TEST_LOG = '''
| person | 31.5 | 40.1 |
|      car      | 47.57 | 72.31 |
|     truck     |  nan  |  nan  |
11/25 - mmengine - INFO - Iter(test) [32/32]    aAcc: 93.5  mIoU: 64.34  mAcc
'''
TRAIN_LOG = '''
Iter(train) [50/100] loss: 1  snl/decode_head.snl/offset_mean: 0.1000  snl/decode_head.snl/offset_max: 0.5000  snl/decode_head.snl/entropy: 0.9000  snl/decode_head.snl/outside: 0.4500
Iter(train) [100/100] loss: 1  snl/decode_head.snl/offset_mean: 0.2000  snl/decode_head.snl/offset_max: 0.7000  snl/decode_head.snl/entropy: 0.8000  snl/decode_head.snl/outside: 0.4400
'''  # noqa: E501


def test_scores_and_snl_statistics_are_read_from_the_logs():
    miou, per_class = ablation.parse_scores(TEST_LOG)
    assert miou == 64.34
    assert per_class == {'person': 31.5, 'car': 47.57}  # nan rows dropped
    stats = ablation.last_snl_stats(TRAIN_LOG)
    assert stats == {
        'decode_head.snl':
        dict(offset_mean=0.2, offset_max=0.7, entropy=0.8, outside=0.44)
    }
    assert ablation.last_snl_stats('no hook here') == {}


def test_seeds_are_summarised_with_the_sample_std():
    runs = [
        dict(miou=m, context_iou=c)
        for m, c in ((50., 30.), (52., 40.), (54., 35.))
    ]
    s = ablation.summarise(runs)
    assert s['miou']['mean'] == 52. and s['miou']['std'] == 2.
    assert s['context_iou']['std'] == pytest.approx(
        np.std([30, 40, 35], ddof=1))
    assert s['context_iou']['values'] == [30., 40., 35.]


def test_a_single_seed_is_shown_without_a_std():
    assert ablation.mean_std([52.]) == '52.00'
    assert ablation.mean_std([50., 52., 54.]) == '52.00 ± 2.00'
    row = dict(
        method='Baseline',
        paper_miou=70.39,
        runs=[dict(miou=52., context_iou=30., snl_stats={})],
        summary=ablation.summarise([dict(miou=52., context_iou=30.)]))
    table = ablation.markdown([row])
    assert '| Baseline | 52.00 | 30.00 | 30.0 | - |' in table
    assert 'nan' not in table


def test_unknown_row_is_refused():
    with pytest.raises(SystemExit):
        ablation.main(['--only', 'Baseline', '+ SNL K=7'])


@pytest.mark.slow
def test_tiny_table_end_to_end(tmp_path):
    """Two seeds of one SNL row through mim train/test, a few iterations:
    the table, JSON and plot are written and the cue attention measured."""
    out = tmp_path / 'ablation'
    code, log = run_cli([
        'python', TOOL, '--out',
        str(out), '--only', '+ SNL K=9', '--seeds', '0', '1', '--iters', '2',
        '--num-train', '4', '--num-val', '2', '--batch', '2'
    ])
    assert code == 0, log[-3000:]
    result = json.loads((out / 'results.json').read_text())
    (row, ) = result['rows']
    assert [r['seed'] for r in row['runs']] == [0, 1]
    for run in row['runs']:
        # the context classes' mean, of classes mmseg scored
        assert run['context_iou'] == pytest.approx(
            np.mean([run['per_class'][c] for c in ablation.CUE_CLASSES]))
        assert set(run['per_class']) >= {'car', 'person', 'road'}
        cue = run['cue_attention']
        assert cue['num_pairs'] >= 4 and 0 <= cue['learned'] <= 1
        # K=9 covers no cue 64-112 px away; 2 iterations move nothing
        assert cue['initial'] == 0 and cue['learned'] < 0.05
    assert result['cue_reach']['share_within_grid']['K=9'] == 0
    table = (out / 'results.md').read_text()
    assert table.count('| + SNL K=9 |') == 1 and 'Validation cues' in table
    assert (out / 'results.png').stat().st_size > 10000
    # a second call reuses the scored runs
    code, log = run_cli([
        'python', TOOL, '--out',
        str(out), '--only', '+ SNL K=9', '--seeds', '0', '1', '--iters', '2',
        '--num-train', '4', '--num-val', '2', '--batch', '2'
    ])
    assert code == 0, log[-3000:]
    again = json.loads((out / 'results.json').read_text())
    assert again['rows'][0]['runs'] == row['runs']
    # the runs' own time is kept, not the quick second call's
    assert again['run_minutes'] == result['run_minutes'] > 0
    assert again['minutes'] < result['minutes']
