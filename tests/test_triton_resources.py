"""The Triton kernels compiled ahead of time for GPUs, with no GPU here.

A static check: every launch configuration the ``triton`` backend picks
for the paper's shapes and a small-channel one, forward and backward, in
each input dtype, compiled for sm_80 and sm_90a, fits the register file:
no local memory (no spills, and no stack frame that an instruction
addresses: triton 3.8.0 declares an unused 4-byte local array in the halo
forward at small channel counts, for which ptxas reports an 8-byte frame),
within the register caps the backend sets (128
for the forward, 168 for the backward, 255 for the segment sums, the
halo forward, which has no cap, and the halo backward's kernels). triton
2.1 (torch 2.1's, in compat-check's canonical stack) has no cap to set:
there ptxas chooses, up to 255, and must spill nothing either.
"""
import json
import os

import pytest

from mmseg_ssanet.features import triton_register_cap
from .conftest import run_cli

pytestmark = pytest.mark.triton(compiles_for='cuda')  # no interpreter

# The paper's shapes and a small-channel one; SSANET_RESOURCE_SHAPES
# ("CQ,C,K ...") takes fewer: make compat-check's stacks check the widest
# and the small one, so that each stack's cold compiles stay short.
SHAPES = os.environ.get('SSANET_RESOURCE_SHAPES', '').split() or [
    '256,512,81', '256,512,49', '128,256,81', '16,24,9'
]
CAPPED = bool(triton_register_cap(1))  # the maxnreg launch option


def test_every_launch_fits_the_register_file(tmp_path):
    # Runs with TRITON_INTERPRET=1 in the environment (conftest sets it):
    # the tool unsets it for itself, or nothing would be compiled.
    code, log = run_cli([
        'python', 'tools/analysis_tools/triton_resources.py', '--shapes',
        *SHAPES, '--out',
        str(tmp_path)
    ])
    assert code == 0, log[-2000:]
    rows = json.loads((tmp_path / 'resources.json').read_text())
    # dtypes x targets x kernels (the forward, its halo variant, the
    # backward, its deterministic variant and that variant's segment sums,
    # the halo backward's two tile kernels and its key and value kernel)
    assert len(rows) == len(SHAPES) * 3 * 2 * 8
    assert {r['target'] for r in rows} == {'sm_80', 'sm_90a'}
    assert {r['dtype'] for r in rows} == {'fp32', 'bf16', 'fp16'}
    for r in rows:
        where = (f"{r['kernel']} Cq,C,K={r['cq']},{r['c']},{r['k']} "
                 f"{r['dtype']} {r['target']}")
        assert r['local_accesses'] == 0, where
        assert r['stack_bytes'] <= 8, where  # at most that unused array
        assert r['spill_store_bytes'] == r['spill_load_bytes'] == 0, where
        # a launch that asks for more shared memory than the GPU has fails
        assert r['shared_bytes'] <= r['shared_limit'], where
        cap = {
            'forward': 128,
            'halo_forward': 255,
            'segment_sum': 255,
            'halo_key_value': 255,
            'halo_points': 255,
            'halo_gradients': 255
        }.get(r['kernel'], 168)
        # triton 2.1 has no register cap to set: ptxas's own limit
        assert r['register_cap'] == (cap if CAPPED else 255), where
        assert 0 < r['registers'] <= r['register_cap'], where
        # float atomics only where the backward adds key and value
        # gradients to corner pixels (its sorted variant has none) and for
        # the halo backward's corners beyond its halo (the halo kernels
        # fill their coefficient tiles in order, without)
        assert (r['global_atomics']
                > 0) == (r['kernel'] in ('backward', 'halo_gradients')), where
    assert '| forward | 256, 512, 81 | fp32 | sm_90a |' in \
        (tmp_path / 'resources.md').read_text()


# In a process of its own without the interpreter, as the tool runs: the
# halo kernels' float64 products compile where the probe says they do
# (triton 2.1.0 refuses them), and the kernels float64 inputs take instead
# (the gather forward, the sorted backward) compile on every triton.
FLOAT64_COMPILES = """
import json, os, sys
os.environ.pop('TRITON_INTERPRET', None)
sys.path.insert(0, 'tools/analysis_tools')
import triton_resources
from mmseg_ssanet.ops.backends.triton_halo import float64_products_refused
compiled = {}
for kernel in ('halo_forward', 'forward', 'backward_deterministic',
               'segment_sum'):
    try:
        triton_resources._compile(kernel, 16, 24, 9, 'fp64', 80)
        compiled[kernel] = True
    except Exception:
        compiled[kernel] = False
print(json.dumps(dict(refused=float64_products_refused('cuda'),
                      compiled=compiled)))
"""


def test_float64_inputs_take_kernels_that_compile():
    code, log = run_cli(['python', '-c', FLOAT64_COMPILES])
    assert code == 0, log[-2000:]
    found = json.loads(log.strip().splitlines()[-1])
    compiled = found.pop('compiled')
    assert compiled.pop('halo_forward') == (found['refused'] is None), found
    assert all(compiled.values()), compiled
