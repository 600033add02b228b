"""What the Triton SNL kernels cost a GPU, measured with no GPU present.

Compiles the forward and backward kernels ahead of time for NVIDIA targets
(``triton.compile`` with a ``GPUTarget``), with the launch sizes the
``triton`` backend picks for each shape, and reads registers, stack frame
and spills from ``ptxas -v`` (the ptxas inside the triton wheel) and the
shared memory a launch takes from triton's compilation. Also counts
the atomic instructions on global memory in the PTX (``atom`` / ``red``)
and the instructions that address local memory (a stack frame that none
addresses costs nothing).
Prints a Markdown table and writes ``resources.md`` and ``resources.json``.

Example (the paper's shapes, both targets, three dtypes)::

    python tools/analysis_tools/triton_resources.py \
        --out work_dirs/triton_resources

Must run without ``TRITON_INTERPRET`` (under the interpreter the kernels
are not compiled); the tool unsets it for itself.
"""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import sys
import tempfile

# the repo root: this tool runs from a plain checkout (a bare GPU machine)
sys.path.insert(0, osp.abspath(osp.join(__file__, *['..'] * 3)))

DTYPES = {'fp32': 'fp32', 'bf16': 'bf16', 'fp16': 'fp16', 'fp64': 'fp64'}
TORCH_DTYPES = {
    'fp32': 'float32',
    'bf16': 'bfloat16',
    'fp16': 'float16',
    'fp64': 'float64'
}
# float64 (the gradient checks' dtype, accumulated in float64) only when
# asked for: its register use is not a goal
TABLE_DTYPES = ('fp32', 'bf16', 'fp16')
KERNELS = ('forward', 'halo_forward', 'backward', 'backward_deterministic',
           'segment_sum', 'halo_points', 'halo_gradients', 'halo_key_value')
HALO_GEOMETRY = ('TILE_H', 'TILE_W', 'MARGIN', 'HALO_H', 'HALO_W', 'HALO_PAD')
# (Cq, C, K): R101 Cityscapes, R101 ADE20K / PASCAL Context, MobileNetV2
PAPER_SHAPES = ['256,512,81', '256,512,49', '128,256,81']
# the shared memory a block may take on each target (CUDA's opt-in
# maximum; a launch over it fails with triton's OutOfResources)
SHARED_LIMIT = {
    75: 64 * 1024,
    80: 163 * 1024,
    86: 99 * 1024,
    89: 99 * 1024,
    90: 227 * 1024
}
PTXAS = re.compile(r'(\d+) bytes stack frame, (\d+) bytes spill stores, '
                   r'(\d+) bytes spill loads')


def _shape(text):
    try:
        cq, c, k = (int(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'shape {text!r}: expected CQ,C,K (e.g. 256,512,81)') from None
    side = round(k**0.5)
    if min(cq, c, k) < 1 or side * side != k:
        raise argparse.ArgumentTypeError(
            f'shape {text!r}: channels >= 1 and K a square (9, 49, 81...)')
    return cq, c, k


def _compile(kernel, cq, c, k, dtype, arch):
    """PTX of one kernel for one target, with the backend's launch sizes."""
    import torch
    import triton.language as tl

    from mmseg_ssanet.features import triton_compile_ptx
    from mmseg_ssanet.ops.backends import triton_halo, triton_kernels
    from mmseg_ssanet.ops.backends.triton_launch import (halo_backward_launch,
                                                         halo_config,
                                                         halo_key_value_launch,
                                                         launch_config)
    side = round(k**0.5)
    if kernel.startswith('halo'):
        config = halo_config(cq, c, (side, side), (1, 1))
        if kernel != 'halo_forward':  # the halo backward's: its geometry
            config = {name: config[name] for name in HALO_GEOMETRY}
        if kernel in ('halo_points', 'halo_gradients'):
            config.update(halo_backward_launch(kernel[len('halo_'):]))
        elif kernel == 'halo_key_value':  # value gradients: C channels
            config.update(
                halo_key_value_launch(c, getattr(torch, TORCH_DTYPES[dtype])))
    else:
        config = launch_config(kernel, cq, c, k)
    options = {
        name: config.pop(name)
        for name in ('num_warps', 'num_stages', 'maxnreg') if name in config
    }
    geometry = dict(CQ=cq, C=c, KH=side, KW=side, DH=1, DW=1)
    fn = dict(
        forward=triton_kernels.snl_forward_kernel,
        backward=triton_kernels.snl_backward_kernel,
        backward_deterministic=triton_kernels.snl_backward_kernel,
        segment_sum=triton_kernels.snl_segment_sum_kernel,
        halo_forward=triton_halo.snl_halo_forward_kernel,
        halo_points=triton_halo.snl_halo_points_kernel,
        halo_gradients=triton_halo.snl_halo_gradients_kernel,
        halo_key_value=triton_halo.snl_halo_key_value_kernel)[kernel]
    if kernel == 'halo_key_value':  # value gradients: rows of C channels
        geometry = dict(N=c, KH=side, KW=side, DH=1, DW=1, WIDEN=False)
    elif kernel == 'segment_sum':
        geometry = dict(N=c)
    elif kernel.startswith('halo'):
        geometry['WIDEN'] = False  # the interpreter's widening
    elif kernel != 'forward':  # the gather backward: atomic or sorted
        geometry['KEY_VALUE_ATOMICS'] = kernel == 'backward'
    acc = 'fp64' if dtype == 'fp64' else 'fp32'
    constants = dict(**geometry, **config, ACC=getattr(tl, f'float{acc[2:]}'))
    # the inputs' rows in the input dtype (and the two forwards' outputs);
    # entry lists' indices in int64; buffers in the accumulator's dtype
    data = ('Q', 'KEY', 'V', 'GRAD_OUT', 'SRC', 'X') + (
        ('OUT', ) if kernel in ('forward', 'halo_forward') else ())
    types = dict(
        total='i32',
        H='i32',
        W='i32',
        scale='fp32',
        ENTRY_ROW='*i64',
        STARTS='*i64',
        **{name: '*' + DTYPES[dtype]
           for name in data})
    signature = {
        name: 'constexpr' if name in constants else types.get(name, f'*{acc}')
        for name in fn.arg_names
    }
    ptx, shared = triton_compile_ptx(fn, signature, constants, arch, **options)
    return ptx, dict(
        shared_bytes=shared,
        shared_limit=SHARED_LIMIT[arch],
        block_q=config.get(
            'BLOCK_Q',
            config.get('TILE_H', 0) * config.get('TILE_W', 0) or '-'),
        num_warps=options['num_warps'],
        register_cap=options.get('maxnreg', 255))


def ptxas_usage(ptx: str, arch: int) -> dict:
    """Registers, stack and spill bytes that ``ptxas -v`` reports."""
    from mmseg_ssanet.features import triton_ptxas
    ptxas = triton_ptxas()
    gpu = 'sm_90a' if arch == 90 else f'sm_{arch}'
    with tempfile.TemporaryDirectory() as tmp:
        src = osp.join(tmp, 'kernel.ptx')
        with open(src, 'w') as f:
            f.write(ptx)
        proc = subprocess.run([
            ptxas, '-v', f'--gpu-name={gpu}', src, '-o',
            osp.join(tmp, 'kernel.cubin')
        ],
                              capture_output=True,
                              text=True)
    if proc.returncode:
        raise RuntimeError(f'ptxas failed for {gpu}: {proc.stderr[-2000:]}')
    registers = re.search(r'Used (\d+) registers', proc.stderr)
    stack, spill_stores, spill_loads = PTXAS.search(proc.stderr).groups()
    return dict(
        target=gpu,
        registers=int(registers.group(1)),
        stack_bytes=int(stack),
        spill_store_bytes=int(spill_stores),
        spill_load_bytes=int(spill_loads))


def global_atomics(ptx: str) -> int:
    """Atomic instructions on global memory in ``ptx`` (``atom.global``,
    ``red.global``; each runs once per lane that is not masked off)."""
    return len(
        re.findall(r'^\s*(?:@%p\d+\s+)?(?:atom|red)\.global', ptx, re.M))


def local_accesses(ptx: str) -> int:
    """Instructions in ``ptx`` that touch local memory (``ld.local``,
    ``st.local``, ``cvta.local``, the stack pointers or the local depot),
    declarations aside: 0 when a stack frame ptxas reports is declared but
    never addressed."""
    touches = re.compile(r'__local_depot|%SPL?\b|\.local\b')
    declares = re.compile(r'^\s*\.(?:local|reg)\b')
    return sum(1 for line in ptx.splitlines()
               if touches.search(line) and not declares.match(line))


def _row(job):
    """One row of the table: ``job`` is (kernel, (Cq, C, K), dtype, arch)."""
    kernel, (cq, c, k), dtype, arch = job
    ptx, launch = _compile(kernel, cq, c, k, dtype, arch)
    return dict(
        kernel=kernel,
        cq=cq,
        c=c,
        k=k,
        shape=f'{cq}, {c}, {k}',
        dtype=dtype,
        global_atomics=global_atomics(ptx),
        local_accesses=local_accesses(ptx),
        **launch,
        **ptxas_usage(ptx, arch))


def measure(shapes, dtypes, archs, kernels, jobs=1):
    """Every row, ``jobs`` compilations at a time (each in its own
    process), in the order of the loops below."""
    work = [(kernel, shape, dtype, arch) for shape in shapes
            for dtype in dtypes for arch in archs for kernel in kernels]
    if jobs <= 1:
        return [_row(job) for job in work]
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(jobs) as pool:
        return list(pool.map(_row, work))


def markdown(rows):
    from mmseg_ssanet.benchmark.tables import markdown_table
    return markdown_table(rows, [
        'kernel', ('shape', 'Cq, C, K'), 'dtype', 'target',
        ('block_q', 'BLOCK_Q'), ('num_warps', 'warps'), 'registers',
        ('shared_bytes', 'shared B'), ('stack_bytes', 'stack B'),
        ('local_accesses', 'local ld/st in PTX'),
        ('spills', 'spill stores + loads B',
         lambda r: f"{r['spill_store_bytes']} + {r['spill_load_bytes']}"),
        ('global_atomics', 'atom / red in PTX')
    ])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--shapes',
        nargs='+',
        type=_shape,
        default=[_shape(s) for s in PAPER_SHAPES],
        metavar='CQ,C,K',
        help='query/key channels, value channels, points '
        f'(default: the paper\'s, {" ".join(PAPER_SHAPES)})')
    parser.add_argument(
        '--dtypes',
        nargs='+',
        choices=list(DTYPES),
        default=list(TABLE_DTYPES),
        help='input dtypes (fp64 only when named)')
    parser.add_argument(
        '--archs',
        nargs='+',
        type=int,
        choices=[75, 80, 86, 89, 90],
        default=[80, 90],
        help='compute capability: 80 (A100), 90 (H100, '
        'sm_90a), ...')
    parser.add_argument(
        '--kernels',
        nargs='+',
        choices=KERNELS,
        default=list(KERNELS),
        help='which kernels (backward_deterministic: under '
        'torch.use_deterministic_algorithms, with '
        'segment_sum)')
    parser.add_argument(
        '--jobs',
        type=int,
        default=os.cpu_count() or 1,
        help='compilations at a time (default: one per CPU)')
    parser.add_argument(
        '--out',
        default=None,
        help='folder for resources.md and resources.json')
    args = parser.parse_args(argv)
    os.environ.pop('TRITON_INTERPRET', None)  # before triton is imported
    from mmseg_ssanet.features import triton_missing
    missing = triton_missing('cuda')
    if missing:
        sys.exit(f'error: {missing}')
    rows = measure(args.shapes, args.dtypes, args.archs, args.kernels,
                   args.jobs)
    table = markdown(rows)
    print(table)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(osp.join(args.out, 'resources.md'), 'w') as f:
            f.write(table)
        with open(osp.join(args.out, 'resources.json'), 'w') as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
