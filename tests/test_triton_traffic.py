"""The Triton kernels' atomic updates and memory traffic, counted under
the interpreter (tools/analysis_tools/triton_traffic.py), against a count
of the corners inside the map made here from the paper's eqs. 4-5."""
import json

import pytest
import torch

from .conftest import run_cli

pytestmark = pytest.mark.triton  # the kernels under the interpreter


def _corners_inside(b=2, cq=6, c=40, h=5, w=7):
    # the tool's inputs: seed 0, query, key, value, then offsets times 2
    g = torch.Generator().manual_seed(0)
    for channels in (cq, cq, c):
        torch.randn(b, channels, h, w, generator=g)
    off = (torch.randn(b, 18, h, w, generator=g) * 2).view(b, 9, 2, h, w)
    dy = torch.tensor([-1., -1, -1, 0, 0, 0, 1, 1, 1]).view(1, 9, 1, 1)
    dx = torch.tensor([-1., 0, 1, -1, 0, 1, -1, 0, 1]).view(1, 9, 1, 1)
    t_y = torch.arange(h).view(1, 1, h, 1) + dy + off[:, :, 0]
    t_x = torch.arange(w).view(1, 1, 1, w) + dx + off[:, :, 1]
    inside = 0
    for y in (t_y.floor(), t_y.floor() + 1):
        for x in (t_x.floor(), t_x.floor() + 1):
            inside += int(
                ((y >= 0) & (y <= h - 1) & (x >= 0) & (x <= w - 1)).sum())
    return inside


def test_atomic_updates_are_counted_as_the_closed_form_says(tmp_path):
    code, log = run_cli([
        'python', 'tools/analysis_tools/triton_traffic.py', '--out',
        str(tmp_path)
    ])
    assert code == 0, log[-2000:]
    result = json.loads((tmp_path / 'traffic.json').read_text())
    atomics = {
        variant:
        sum(r['elements'] for r in result['counted']
            if r['variant'] == variant and r['access'] == 'atomic')
        for variant in ('atomic', 'sorted')
    }
    # Cq + C float atomics per (query, point, corner) inside the map; the
    # sorted backward none, its sums in snl_segment_sum_kernel instead
    assert atomics == {'atomic': _corners_inside() * (6 + 40), 'sorted': 0}
    kernels = {(r['variant'], r['kernel']) for r in result['counted']}
    assert ('sorted', 'snl_segment_sum_kernel') in kernels
    assert ('atomic', 'snl_segment_sum_kernel') not in kernels
    # every load, store and atomic is float32 here: 4 bytes an element
    assert all(r['bytes'] == 4 * r['elements'] for r in result['counted']
               if r['kernel'] != 'snl_segment_sum_kernel')
    paper = {(r['channels'], r['map']): r for r in result['paper']}
    # R101 at 64x128 (a 1024x2048 image at stride 16): 2.0e9 updates
    assert paper[('R101', '64x128')]['atomic'] == 4 * 64 * 128 * 81 * 768
    assert all(r['sorted'] == 0 for r in result['paper'])
    # the default backward makes at most a twentieth of the atomics' updates
    from mmseg_ssanet.ops.backends.triton import DEFAULT_BACKWARD
    for r in result['paper']:
        assert 20 * r[DEFAULT_BACKWARD] <= r['atomic'], r
    assert '| R101 | 64x128 | 2038431744 | 0 |' in \
        (tmp_path / 'traffic.md').read_text()
    # the halo forward was counted (the tool checks its closed form, far
    # corners included), with no atomics (it adds each corner to its
    # attention tile in order), and requests far fewer bytes than the
    # gather one
    assert {
        r['access']
        for r in result['counted'] if r['variant'] == 'halo forward'
    } == {'load', 'store'}
    for name in ('halo forward', 'halo backward'):
        assert f'{name}: every kernel\'s loads, stores and atomic updates ' \
            'as the closed form says' in log
    for r in result['paper']:
        assert 5 * r['halo_forward_mb'] < r['gather_forward_mb'], r
        # and its backward, from the tiles, far fewer than the gather
        # kernel's passes that the sorted backward runs, and at most 2.5x
        # its own forward's
        assert 5 * r['halo_mb'] < r['sorted_mb'], r
        assert r['halo_mb'] <= 2.5 * r['halo_forward_mb'], r
        # no atomics when every corner lies in its tile's halo
        assert r['halo'] == 0, r
    # the counted run has corners beyond the halos: one float32 atomic per
    # channel each, in the gradients kernel alone; its three kernels were
    # counted, the gather backward kernel not at all
    halo_atomics = {(r['kernel'], r['elements'])
                    for r in result['counted']
                    if r['variant'] == 'halo' and r['access'] == 'atomic'}
    far = int(log.split(' corners beyond the halo')[0].rsplit('(', 1)[1])
    assert halo_atomics == {('snl_halo_gradients_kernel', far * (6 + 40))}
    assert {r['kernel']
            for r in result['counted'] if r['variant'] == 'halo'} == {
                'snl_halo_points_kernel', 'snl_halo_gradients_kernel',
                'snl_halo_key_value_kernel'
            }
