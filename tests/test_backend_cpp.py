"""The C++ backend's internals: tiles, strips and threads, the build under
test, reproducibility, far offsets, strided inputs.

.dev_scripts/check_kernel.py runs this file (with test_ops.py and the fuzz) on
each compiled variant of the kernel, with sanitizers.
"""
import os

import pytest
import torch

from mmseg_ssanet.ops import sparse_nonlocal_attention as snl
from mmseg_ssanet.ops.backends import cpp
from tests.ops_cases import random_inputs as _inputs
from tests.ops_cases import reference_and


@pytest.mark.parametrize('threads', [1, 2, 5])
@pytest.mark.parametrize(
    'shape',
    [
        dict(B=2, H=3, W=70),  # rows wider than a strip, tiles cut at row ends
        dict(B=3, H=9, W=5),  # rows narrower than a tile
        dict(B=1, H=2, W=1)
    ])
def test_cpp_tiles_strips_and_threads(shape, threads):
    # More threads than rows: every thread's halo buffers hold key/value
    # gradients of rows another thread owns.
    q, k, v, o = _inputs(
        Cq=17, C=33, K=15, dtype=torch.float64, offset_scale=2.5, **shape)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        ref, got = reference_and('cpp', q, k, v, o, (3, 5), 2, 0.3)
    finally:
        torch.set_num_threads(previous)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_cpp_kernel_is_the_build_under_test():
    # .dev_scripts/check_kernel.py runs these tests on single-ISA and sanitizer
    # builds (loaded by path) and names the one it expects; otherwise it is
    # the installed build, with every ISA variant picked at load time.
    expected = os.environ.get('SSANET_EXPECT_BUILD', 'multiversion')
    built = cpp._C.isa + ('-sanitize' if cpp._C.sanitized else '')
    assert built == expected
    # the variant that runs: the build's one ISA, or the CPU's best
    if cpp._C.isa != 'multiversion':
        assert cpp._C.variant() == cpp._C.isa
    else:
        assert cpp._C.variant() in ('x86-64-v4', 'x86-64-v3', 'x86-64',
                                    'generic')


def test_cpp_is_reproducible_and_agrees_across_thread_counts():
    # Bitwise the same on a rerun with the same threads (at::parallel_for
    # splits the work statically); thread counts split tiles and gradient
    # halos differently, which changes float32 rounding only.
    q, k, v, o = _inputs(
        B=2,
        Cq=24,
        C=40,
        H=20,
        W=37,
        K=49,
        dtype=torch.float32,
        offset_scale=4.0)
    previous = torch.get_num_threads()
    results = {}
    try:
        for threads in (1, 2, 4):
            torch.set_num_threads(threads)
            runs = [reference_and('cpp', q, k, v, o, 7)[1] for _ in range(2)]
            for a, b in zip(*runs):
                assert torch.equal(a, b), f'{threads} threads'
            results[threads] = runs[0]
    finally:
        torch.set_num_threads(previous)
    for threads in (2, 4):
        for a, b in zip(results[threads], results[1]):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_cpp_offsets_far_beyond_the_grid():
    # A tile whose corners span more than the kernel's merge window: every
    # corner is its own window pixel; far outside the map, no corner at all.
    q, k, v, o = _inputs(
        B=1,
        Cq=3,
        C=4,
        H=40,
        W=120,
        K=9,
        dtype=torch.float64,
        offset_scale=60.0)
    o = o.detach()
    o[:, :, :3] = 1e6  # every point of the first rows far outside
    ref, got = reference_and('cpp', q, k, v, o, 3)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_cpp_reads_strided_inputs_without_copies():
    # Channel slices of one channels_last tensor (how a fused projection
    # would hand them over) and plain NCHW tensors give the same result.
    B, H, W, K = 2, 6, 9, 9
    g = torch.Generator().manual_seed(3)
    packed = torch.randn(
        B, 4 + 4 + 5 + 2 * K, H, W, generator=g,
        dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    q, k, v, o = torch.split(packed, [4, 4, 5, 2 * K], dim=1)
    expected = snl(
        *(x.contiguous() for x in (q, k, v, o)), 3, backend='reference')
    torch.testing.assert_close(
        snl(q, k, v, o, 3, backend='cpp'), expected, rtol=1e-12, atol=1e-12)


def _python_with_build(code, library):
    """``code`` in a fresh python that loads the kernel from ``library``
    (SSANET_CPP_EXTENSION)."""
    import subprocess
    import sys
    return subprocess.run([sys.executable, '-c', code],
                          text=True,
                          capture_output=True,
                          env=dict(os.environ, **{cpp.BUILD_ENV:
                                                  str(library)}))


def test_kernel_built_for_another_torch_is_named(tmp_path):
    # A build against another torch fails to load with an undefined
    # symbol (a second venv beside an editable install does this): the
    # fallback warning and the forced backend's error say so, and how to
    # rebuild. A library with an undefined symbol stands in for it.
    import subprocess
    source = tmp_path / 'other.c'
    source.write_text('extern void at_ops_zeros_call(void);\n'
                      'void PyInit__C(void) { at_ops_zeros_call(); }\n')
    library = tmp_path / '_C.so'
    subprocess.run(
        ['gcc', '-shared', '-fPIC', '-o',
         str(library),
         str(source)],
        check=True)
    proc = _python_with_build(
        'import torch\n'
        'from mmseg_ssanet.ops.backends import cpp\n'
        'print(cpp.unavailable(torch.device("cpu")))\n', library)
    assert proc.returncode == 0, proc.stderr
    assert ('the fused C++ kernel was built against another torch than the '
            f'installed {torch.__version__}') in proc.stdout
    assert 'undefined symbol: at_ops_zeros_call' in proc.stdout
    assert 'rebuild it with `pip install --no-build-isolation -e .`' \
        in proc.stdout


@pytest.mark.parametrize('what', ['missing', 'not a library'])
def test_a_bad_build_path_is_named(tmp_path, what):
    # SSANET_CPP_EXTENSION (.dev_scripts/check_kernel.py's way to load one
    # build) pointing at nothing, or at a file that is no library: the
    # backend is unavailable with the path in the reason, and asking for it
    # says so.
    path = tmp_path / '_C.so'
    if what == 'not a library':
        path.write_text('not an ELF file\n')
    code = ('import torch\n'
            'from mmseg_ssanet.ops import sparse_nonlocal_attention as snl\n'
            'q = torch.zeros(1, 2, 3, 4)\n'
            'try:\n'
            '    snl(q, q, q, torch.zeros(1, 18, 3, 4), 3, backend="cpp")\n'
            'except RuntimeError as err:\n'
            '    print("ERROR", err)\n')
    proc = _python_with_build(code, path)
    assert proc.returncode == 0, proc.stderr
    assert "ERROR SNL backend 'cpp' cannot run here" in proc.stdout
    assert str(path) in proc.stdout
    if what == 'missing':
        assert 'is not a built extension' in proc.stdout
