"""FLOPs: the SNL operator counted by its closed form; any config."""
import re

import pytest
import torch

from mmseg_ssanet.models import SparseNonLocal2d
from mmseg_ssanet.utils.flops import SNL_OPS, flop_analyzer, snl_flops
from .conftest import run_cli


@pytest.mark.parametrize('backend', ['cpp', 'triton', 'csr'])
def test_snl_block_flops_are_the_closed_form_plus_its_convs(backend):
    B, C, H, W, K = 2, 16, 6, 7, 9
    block = SparseNonLocal2d(C, num_samples=K, backend=backend).eval()
    analyzer = flop_analyzer(block, (torch.randn(B, C, H, W), ))
    by_op = analyzer.by_operator()
    cq = C // 2
    # by_operator() drops the namespace ('prim::') of the handle's name
    counted = [
        by_op[op.split('::')[1]] for op in SNL_OPS
        if op.split('::')[1] in by_op
    ]
    assert counted == [snl_flops(B, H * W, K, cq, C)
                       ] == [B * H * W * K * (5 * (cq + C) + 7)]
    # theta, phi, g, offset and gamma: 1x1 convs, B N C_in C_out each
    assert by_op['conv'] == B * H * W * C * (cq + cq + C + 2 * K + C)
    # left out: only elementwise ops (the residual add; csr's sampling
    # geometry), which mmengine's convention does not count
    assert not [
        op for op in analyzer.unsupported_ops()
        if 'PythonOp' in op or 'sparse' in op or 'snl' in op
    ]


def test_get_flops_on_ours_and_on_a_stock_config():
    code, log = run_cli([
        'python', 'tools/analysis_tools/get_flops.py',
        'configs/ablation/mobilenetv2_snl-k81_cityscapes.py', '--shape', '128',
        '256'
    ])
    assert code == 0, log[-2000:]
    assert 'input 1x3x128x256' in log
    ours = int(re.search(r'FLOPs: \S+ \((\d+)\)', log).group(1))
    # nothing left uncounted
    assert 'SparseAttentionFunction' not in log and 'snl_' not in log
    # the SNL block's operator on the 8x16 stride-16 map is part of it
    assert ours > snl_flops(1, 8 * 16, 81, 128, 256)

    code, log = run_cli([
        'python', 'tools/analysis_tools/get_flops.py',
        'mmseg::fcn/fcn_r18-d8_4xb2-80k_cityscapes-512x1024'
        '.py', '--shape', '64'
    ])
    assert code == 0, log[-2000:]
    assert re.search(r'FLOPs: \S+ \(\d+\)', log)
    assert 'params:' in log
