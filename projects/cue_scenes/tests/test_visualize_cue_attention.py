"""tools/visualize_cue_attention.py: every target's query and its cue."""
import re

from PIL import Image

from projects.cue_scenes.paired_cues import generate_cue_scenes
from tests.conftest import DEMO, run_cli

TOOL = 'projects/cue_scenes/tools/visualize_cue_attention.py'


def test_cue_scene_picture_queries_targets_and_scores_their_cues(tmp_path):
    generate_cue_scenes(
        'cityscapes',
        str(tmp_path / 'cues'),
        num_train=0,
        num_val=1,
        seed=2,
        cue_distance=(40, 64))
    stem = 'val/frankfurt/frankfurt_000000_000019_'
    img = str(tmp_path / 'cues' / f'leftImg8bit/{stem}leftImg8bit.png')
    label = str(tmp_path / 'cues' / f'gtFine/{stem}gtFine_labelTrainIds.png')
    out = str(tmp_path / 'cues.png')
    code, log = run_cli(
        ['python', TOOL, DEMO, 'none', img, label, '--out', out])
    assert code == 0, log[-3000:]
    assert Image.open(out).size[0] > 500
    found = re.findall(
        r'target at .*?cue (\d+) px away: attention on its '
        r'cue ([0-9.]+) \(initial grid ([0-9.]+)\)', log)
    assert len(found) >= 2, log[-2000:]
    for distance, learned, initial in found:
        assert 40 <= int(distance) <= 64
        # untrained: zero offsets, near-uniform weights on the initial grid
        assert abs(float(learned) - float(initial)) < 0.02
    assert any(float(initial) > 0 for _, _, initial in found)
    code, log = run_cli(['python', TOOL, DEMO, 'none', img, img, '--out', out])
    assert code != 0 and 'is not a label map' in log
