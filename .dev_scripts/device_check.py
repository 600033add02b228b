"""The GPU machine's check, in one command, on a bare stack.

    python3 .dev_scripts/device_check.py OUT_DIR [--cpu] [--wheels DIR]
        [--budget SECONDS]

Needs only a python3 with torch and triton (plus pytest, hypothesis and a
C++ compiler): no .venv, no `make env`, no package index. With --wheels DIR
(mmcv, mmengine, mmseg, mmpretrain, openmim and their pure-Python needs,
built for this Python and torch: for the GPU machine
../shared/wheels/device-cp312/, copied into an ignored folder of the
checkout that the device call carries) they are installed into a temporary
--target at the start and the model parts run; without it those parts are
skipped and say so. Builds under build/kernels/ of this checkout. Parts,
in order of value, each under a time limit, the whole within the budget
(default 480 s on a GPU, 900 s in the rehearsal; a part that would start
with less than 20 s left is "not reached"):

  1. the operator tests on CUDA (tests/test_ops.py's *-cuda cases, the
     triton and csr backends' own tests): values and gradients against the
     equations and the reference, float64 gradcheck, the deterministic
     backward bitwise, half precision, NaN and off-map points,
     torch.compile and export;
  2a. tools/analysis_tools/benchmark_triton_variants.py: the Triton
     forward and backward variants (SSANET_TRITON_FORWARD,
     SSANET_TRITON_BACKWARD) side by side with dense
     attention in plain torch and SDPA, at the configs' shapes and
     channels, fp32 and bf16;
  2b. tools/analysis_tools/gpu_report.py without its timing (2a's):
     every CUDA backend against float64 (check_numerics.py), the Triton
     backward's reproducibility, the resource table for this GPU's
     architecture;
  3. (wheels) SSANet R101 on generated Cityscapes-format data at 512x1024
     through `mim train --launcher pytorch` (DDP, SyncBN, the plugin's
     wrapper, the Triton op), 30 iterations in fp32 and with --amp:
     finite, falling loss, s / iter, peak memory; `mim test` of the fp32
     checkpoint and one MMSegInferencer call;
  4. (wheels) the paper's Table 2: benchmark_models.py at 2x3x1024x2048,
     Baseline / +PPM / +ASPP / +NL / +SNL, fp32, fp16 and bf16;
  5. the Triton kernel (each forward and backward variant) under
     compute-sanitizer memcheck at one small size
     (device_parts/triton_smoke.py);
  6. the fused C++ kernel per ISA variant (check_kernel.py, built at the
     start beside the GPU parts, then tested): its tests and the
     differential fuzz on every variant this CPU executes, under ASan +
     UBSan where gcc's runtime is there;
  7. benchmark_threads.py: the C++ kernel's thread scaling (1-16).

--cpu (or no CUDA device): the rehearsal `.ci/run` makes on a bare venv
(rehearse_device_check.py), the same parts at tiny sizes: operator tests
on CPU tensors (Triton through its interpreter), a couple of iterations,
the smoke script without the sanitizer, one plain build of the C++ kernel
(the best variant this CPU runs).

Writes into OUT_DIR: summary.md (rewritten after every part), cpu.txt,
tests.log (parts 1 and 5), variants.md and variants.log (2a), report.md
and report.log (2b), model.log (3),
table2.md and table2.log (4), kernel.log (6), threads.md and threads.log
(7). Exit status 1 if a part failed or timed out.
"""
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time

import check_kernel
from dev_common import (REPO, Clock, argument_parser, last_line, outcome,
                        run_logged, wait_or_kill)

PARTS = osp.join(osp.dirname(osp.abspath(__file__)), 'device_parts')
PY = sys.executable
R101 = 'configs/ssanet_r101_cityscapes.py'


class Summary:
    """The parts' rows, written to summary.md after each."""

    def __init__(self, out, mode, command, clock):
        self.out, self.mode, self.command = out, mode, command
        self.clock = clock
        self.rows, self.tail = [], []

    def record(self, name, result, seconds, log=None):
        self.rows.append(f'| {name} | {result} | {seconds} s |')
        print(f'== part {name}: {result} ({seconds} s)', flush=True)
        said_why = result.startswith(('passed', 'skipped', 'not reached'))
        if log and not said_why:
            self.rows.append(f'| (its last line) | {last_line(log)} | |')
        self.write()

    def failed(self):
        return any('FAILED' in r or 'TIMED OUT' in r for r in self.rows)

    def write(self):
        lines = [
            f'# Device check ({self.mode} mode), {time.strftime("%Y-%m-%d")}',
            '', f'Command: `{self.command}`; {self.clock.elapsed()} s in all '
            f'(budget {self.clock.budget} s).',
            'Machine: cpu.txt. Details: tests.log, variants.md, report.md, '
            'model.log, table2.md, kernel.log, threads.md.', '',
            '| part | result | time |', '| --- | --- | --- |', *self.rows
        ]
        if self.tail:
            lines += ['', *self.tail]
        with open(osp.join(self.out, 'summary.md'), 'w') as f:
            f.write('\n'.join(lines) + '\n')


class Check:

    def __init__(self, args):
        self.out = osp.abspath(args.out_dir)
        os.makedirs(self.out, exist_ok=True)
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ('SSANET_CPP_EXTENSION', 'TRITON_INTERPRET')
        }
        self.env['PYTHONUNBUFFERED'] = '1'
        self.mode = 'cpu' if args.cpu or not self._has_cuda() else 'gpu'
        budget = args.budget or (480 if self.mode == 'gpu' else 900)
        self.clock = Clock(budget)
        command = 'python3 .dev_scripts/device_check.py OUT_DIR' + (
            ' --cpu' if self.mode == 'cpu' else '') + (' --wheels DIR'
                                                       if args.wheels else '')
        self.summary = Summary(self.out, self.mode, command, self.clock)
        self.wheels = args.wheels
        self.site = None
        self.models = False  # whether the wheels' stack imports

    def _has_cuda(self):
        return subprocess.run([
            PY, '-c', 'import sys, torch; '
            'sys.exit(0 if torch.cuda.is_available() else 1)'
        ],
                              env=self.env).returncode == 0

    def path(self, name):
        return osp.join(self.out, name)

    def part(self, name, wanted, log, cmd, env=None):
        """Run one part under its time limit; its exit status."""
        limit = self.clock.box(wanted)
        if limit < 20:
            self.summary.record(
                name, f'not reached (budget of {self.clock.budget} s spent)',
                0)
            return 0
        start = time.monotonic()
        status = run_logged(cmd, log, timeout=limit, env=env or self.env)
        self.summary.record(name, outcome(status),
                            int(time.monotonic() - start), log)
        return status

    # -- the stack ---------------------------------------------------------

    def install_wheels(self):
        """The OpenMMLab stack from the wheels, into a temporary --target;
        whether the model parts can run."""
        if not self.wheels:
            return False
        self.site = tempfile.mkdtemp(prefix='device_check_site_')
        log = self.path('wheels.log')
        status = run_logged([
            PY, '-m', 'pip', 'install', '-q', '--no-index', '--no-deps',
            '--no-compile', '--disable-pip-version-check', '--target',
            self.site, *sorted(glob.glob(osp.join(self.wheels, '*.whl')))
        ], log)
        if status:
            print(
                open(log).read(), f'the wheels in {self.wheels} did not '
                'install',
                file=sys.stderr)
            return False
        os.remove(log)
        path = self.env.get('PYTHONPATH')
        self.env['PYTHONPATH'] = ':'.join(
            filter(None, [self.site, REPO, path]))
        self.env['PATH'] = f'{self.site}/bin:{self.env["PATH"]}'
        return subprocess.run(
            [PY, '-c', 'import mmcv.ops, mmseg, mmengine, mim'],
            env=self.env,
            capture_output=True).returncode == 0

    def describe_machine(self):
        probes = [
            "import sys, numpy, torch, triton; print('python', "
            "sys.version.split()[0], '| numpy', numpy.__version__, '| torch',"
            " torch.__version__, '| triton', triton.__version__, '| cuda', "
            "torch.version.cuda, '|', torch.cuda.get_device_name() if "
            "torch.cuda.is_available() else 'no GPU')",
            "import mmcv, mmengine, mmseg; print('mmcv', mmcv.__version__, "
            "'| mmengine', mmengine.__version__, '| mmseg', "
            'mmseg.__version__)'
        ]
        lines = [
            f'date: {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}',
            f'mode: {self.mode}; budget {self.clock.budget} s; wheels: '
            f'{self.wheels or "none"}'
        ]
        with open('/proc/cpuinfo') as f:
            info = f.read().splitlines()
        lines += [line for line in info if line.startswith('model name')][:1]
        lines.append(f'cpus: {os.cpu_count()}')
        lines += [line for line in info if line.startswith('flags')][:1]
        for probe in probes:
            proc = subprocess.run([PY, '-c', probe],
                                  env=self.env,
                                  capture_output=True,
                                  text=True)
            lines.append(proc.stdout.strip() or 'mmcv/mmengine/mmseg: not '
                         'importable')
        if self.mode == 'gpu':
            lines.append(
                self._output([
                    'nvidia-smi', '--query-gpu=name,driver_version,'
                    'memory.total,clocks.sm,clocks.max.sm', '--format=csv'
                ]))
        lines.append((self._output(['gcc', '--version'])
                      or 'gcc: missing').splitlines()[0])
        text = '\n'.join(lines) + '\n'
        with open(self.path('cpu.txt'), 'w') as f:
            f.write(text)
        print(text)

    def _output(self, cmd):
        try:
            return subprocess.run(
                cmd, capture_output=True, text=True).stdout.strip()
        except FileNotFoundError:
            return ''

    # -- the parts ---------------------------------------------------------

    def operator_tests(self):
        if self.mode == 'gpu':
            tests = [
                'tests/test_ops.py', 'tests/test_backend_csr.py',
                'tests/test_backend_triton.py',
                'tests/test_triton_launch_table.py'
            ]
            select = 'cuda or triton or refuse'
        else:  # a few CPU cases; the C++ kernel is tested in part 6
            tests = ['tests/test_ops.py', 'tests/test_backend_csr.py']
            select = ('cpu and not cpp and (matches_the_equations or '
                      'coalesced or refuse)')
        if subprocess.run([PY, '-c', 'import mmcv.ops'],
                          env=self.env,
                          capture_output=True).returncode:
            select = f'({select}) and not mmcv_deform_conv'
        self.part(f"1. operator tests (pytest -k '{select}')", 200,
                  self.path('tests.log'), [
                      PY, '-m', 'pytest', *tests, '-k', select, '-q', '-p',
                      'no:cacheprovider', '-o', 'addopts=', '-rfEs'
                  ])

    def _interpreted_env(self):
        return dict(self.env, TRITON_INTERPRET='1') if self.mode == 'cpu' \
            else self.env

    def triton_variants(self):
        if self.mode == 'gpu':
            sizes = ['--with', 'dense sdpa']
        else:
            sizes = [
                '--device', 'cpu', '--maps', '5x6:2', '--channels', '4,6',
                '--k', '9', '--dtypes', 'fp32', '--repeats', '1'
            ]
        work = self.path('triton_variants')
        self.part(
            '2a. Triton forward and backward variants',
            120,
            self.path('variants.log'), [
                PY, 'tools/analysis_tools/benchmark_triton_variants.py',
                '--out', work, *sizes
            ],
            env=self._interpreted_env())
        self._keep(osp.join(work, 'variants.md'), 'variants.md', work)

    def gpu_report(self):
        if self.mode == 'gpu':
            sizes = ['--sizes']  # 2a timed them
        else:
            sizes = [
                '--device', 'cpu', '--sizes', '6x8', '--batches', '1',
                '--dtypes', 'fp32', '--cq', '4', '--c', '6', '--k', '9',
                '--check-size', '5x6', '--repeats', '1', '--archs', '90'
            ]
        work, log = self.path('gpu_report'), self.path('report.log')
        status = self.part(
            '2b. gpu_report.py',
            # under the interpreter: seven Triton rows checked in four dtypes
            150 if self.mode == 'gpu' else 300,
            log,
            [PY, 'tools/analysis_tools/gpu_report.py', '--out', work, *sizes],
            env=self._interpreted_env())
        self._keep(osp.join(work, 'report.md'), 'report.md', work)
        if status:
            print(''.join(open(log).readlines()[-20:]))

    def _keep(self, made, name, folder):
        if osp.isfile(made):
            shutil.move(made, self.path(name))
        shutil.rmtree(folder, ignore_errors=True)

    def model_runs(self):
        name = '3. R101 through mim'
        if not self.models:
            self.summary.record(
                name, 'skipped: no --wheels (mmcv, mmengine, mmseg, mim not '
                'importable)', 0)
            return
        if self.mode == 'gpu':
            size, iters, precisions, require = '512x1024', 30, (
                'fp32', 'amp'), 'falling'
        else:  # whether 2 steps lower the loss is chance: a finite one
            size, iters, precisions, require = '64x128', 2, (
                'fp32', ), 'finite'
        title = (f'{name}: train {" + ".join(precisions)} ({iters} its, '
                 f'{size}), mim test, MMSegInferencer')
        limit = self.clock.box(230)
        if limit < 20:
            self.summary.record(title, 'not reached', 0)
            return
        start = time.monotonic()
        log = self.path('model.log')
        with tempfile.TemporaryDirectory() as work:
            status = ModelRuns(self, work, log,
                               start + limit).run(size, iters, precisions,
                                                  require)
        self.summary.record(title, outcome(status),
                            int(time.monotonic() - start), log)
        if osp.isfile(log):
            self.summary.tail += [
                line.rstrip() for line in open(log) if line.startswith('|')
            ]

    def table2(self):
        name = '4. Table 2 (benchmark_models.py'
        if not self.models:
            self.summary.record('4. Table 2',
                                'skipped: no --wheels (mmseg not importable)',
                                0)
            return
        if self.mode == 'gpu':
            options = [
                '--device', 'cuda', '--batch', '2', '--dtypes', 'fp32', 'fp16',
                'bf16', '--repeats', '10'
            ]
        else:
            options = [
                '--device', 'cpu', '--height', '64', '--width', '128',
                '--dtypes', 'fp32', 'bf16', '--repeats', '1'
            ]
        work = self.path('table2')
        self.part(f'{name} {" ".join(options)})', 120, self.path('table2.log'),
                  [
                      PY, 'tools/analysis_tools/benchmark_models.py',
                      '--no-flops', '--out', work, *options
                  ])
        self._keep(osp.join(work, 'results.md'), 'table2.md', work)

    def triton_sanitized(self):
        # No caching allocator: memcheck then sees each tensor.
        env = dict(self._interpreted_env(), PYTORCH_NO_CUDA_MEMORY_CACHING='1')
        cmd = [PY, osp.join(PARTS, 'triton_smoke.py')]
        sanitizer = 'no sanitizer (rehearsal)'
        if self.mode == 'gpu':
            sanitizer = 'compute-sanitizer --tool memcheck'
            cmd = sanitizer.split() + ['--error-exitcode', '1', *cmd]
        log = self.path('tests.log')
        with open(log, 'a') as f:
            f.write(f'\n### part 5: {" ".join(cmd)}\n')
        self.part(f'5. Triton kernel under {sanitizer}', 90, log, cmd, env=env)


class ModelRuns:
    """Part 3's steps, one time limit for all."""

    def __init__(self, check, work, log, deadline):
        self.check, self.work, self.log, self.deadline = (check, work, log,
                                                          deadline)
        self.data = osp.join(work, 'data')

    def step(self, cmd, log=None):
        left = self.deadline - time.monotonic()
        if left < 1:
            return 124
        with open(self.log, 'a') as f:
            f.write(f'### {" ".join(cmd)}\n')
        return run_logged(
            cmd, log or self.log, timeout=left, env=self.check.env)

    def options(self, size, *more):
        proc = subprocess.run([
            PY, 'tools/misc/short_run_options.py', R101, self.data, '--size',
            size, *more
        ],
                              cwd=REPO,
                              env=self.check.env,
                              capture_output=True,
                              text=True,
                              check=True)
        return proc.stdout.split()

    def append(self, path, pattern=None, first=None, last=None):
        """Lines of ``path`` (those matching ``pattern``; the first or
        last few) into the part's log."""
        lines = open(path, errors='replace').read().splitlines()
        if pattern:
            lines = [line[:200] for line in lines if pattern(line)]
        lines = lines[:first] if first else lines[-last:] if last else lines
        with open(self.log, 'a') as f:
            f.write('\n'.join(lines) + '\n')

    def run(self, size, iters, precisions, require):
        if self.step([
                PY, 'tools/misc/generate_data.py', 'cityscapes', self.data,
                '--num-train', '4', '--num-val', '2', '--size', size, '--seed',
                '0'
        ]):
            return 1
        status = 0
        train = self.options(size, '--iters', str(iters), '--batch', '2',
                             '--no-val')
        table = osp.join(self.work, 'table.md')
        for precision in precisions:
            log = osp.join(self.work, f'{precision}.log')
            port = str(29500 + os.getpid() % 1000)
            if self.step([
                    'mim', 'train', 'mmseg', R101, '--gpus', '1', '--launcher',
                    'pytorch', '--port', port, '--work-dir',
                    osp.join(self.work, precision),
                    *(['--amp'] if precision == 'amp' else []),
                    '--cfg-options', *train
            ], log):
                self.append(log, last=30)
                return 1
            self.append(
                log,
                lambda line: any(
                    word in line
                    for word in ('Distributed training',
                                 'AnyDeviceDistributedDataParallel', 'SyncBN',
                                 'AmpOptimWrapper')),
                first=3)
            status |= self.step([
                PY, 'tools/misc/summarize_training.py',
                osp.join(self.work, precision), '--name',
                f'R101 {size} {precision}', '--require', require,
                *(['--header'] if precision == 'fp32' else [])
            ], table)
        self.append(table)
        checkpoint = osp.join(self.work, 'fp32', f'iter_{iters}.pth')
        log = osp.join(self.work, 'test.log')
        if self.step([
                'mim', 'test', 'mmseg', R101, '--gpus', '1', '--launcher',
                'none', '--work-dir',
                osp.join(self.work, 'test'), '--checkpoint', checkpoint,
                '--cfg-options', *self.options(size, '--no-val')
        ], log):
            self.append(log, last=30)
            return 1
        self.append(log, lambda line: 'mIoU' in line, last=2)
        return status | self.step([
            PY,
            osp.join(PARTS, 'infer_once.py'), R101, checkpoint, self.data, size
        ])


def kernel_variants(mode):
    """The ISA variants to build and the best this CPU runs. On a GPU
    machine all three are built, those it runs tested; the CPU rehearsal
    builds the best one only (``make kernel-check`` builds and checks
    every variant under the sanitizers)."""
    isas = list(check_kernel.ISA_FLAGS)
    runs = [isa for isa in isas if not check_kernel.missing_flags(isa)]
    best = runs[0] if runs else None
    return (runs[:1] if mode == 'cpu' else isas), best


class KernelBuilds:
    """Part 6's builds, started beside the GPU parts (CPU work): one per
    ISA, and a plain one of the best variant for part 7's timings."""

    def __init__(self, check, isas, best, sanitize):
        self.check, self.isas, self.sanitize = check, isas, sanitize
        self.start = time.monotonic()
        self.procs = [self._start(isa, 'build', sanitize) for isa in isas]
        if sanitize and best:
            self.procs.append(self._start(best, 'build', False))

    def _start(self, isa, phase, sanitize):
        log = self.check.path(f'{phase}-{isa}-{int(sanitize)}.tmp')
        cmd = [
            PY,
            osp.join(osp.dirname(osp.abspath(__file__)), 'check_kernel.py'),
            isa, '--phase', phase
        ] + ([] if sanitize else ['--no-sanitize'])
        return subprocess.Popen(
            cmd,
            cwd=REPO,
            env=self.check.env,
            stdout=open(log, 'w'),
            stderr=subprocess.STDOUT,
            start_new_session=True)

    @staticmethod
    def wait(procs, limit):
        deadline = time.monotonic() + limit
        statuses = [
            wait_or_kill(p, max(1, deadline - time.monotonic())) for p in procs
        ]
        return max(statuses, key=lambda s: s != 0)

    def finish(self):
        check, summary = self.check, self.check.summary
        kind = ('ASan + UBSan builds' if self.sanitize else
                ('plain builds: no ASan runtime (gcc\'s libasan.so) here'
                 if check.mode == 'gpu' else 'plain builds (CPU rehearsal; '
                 'sanitizer builds: make kernel-check)'))
        built = self.wait(self.procs,
                          max(1, 400 - (time.monotonic() - self.start)))
        summary.record(
            f'6a. C++ kernel builds: {" ".join(self.isas)} ({kind})',
            outcome(built), int(time.monotonic() - self.start))
        examples = '100' if check.mode == 'gpu' else '25'
        check.env['SSANET_FUZZ_EXAMPLES'] = examples
        limit = check.clock.box(check.clock.budget - 40 -
                                check.clock.elapsed() if check.mode ==
                                'gpu' else 300)
        start = time.monotonic()
        tested = None
        if built == 0 and limit >= 20:
            tested = self.wait(
                [self._start(isa, 'test', self.sanitize) for isa in self.isas],
                limit)
        logs = sorted(glob.glob(check.path('build-*.tmp'))) + sorted(
            glob.glob(check.path('test-*.tmp')))
        text = ''.join(f'##### {osp.basename(p)[:-4]}\n' + open(p).read()
                       for p in logs)
        with open(check.path('kernel.log'), 'w') as f:
            f.write(text)
        lines = [
            line for line in text.splitlines()
            if line.startswith('kernel check:') and 'built' not in line
        ]
        print('\n'.join(lines))
        name = (f'6b. C++ kernel tests + fuzz ({examples} examples): '
                f'{sum(": passed (" in line for line in lines)} passed, '
                f'{text.count("NOT RUN")} not run on this CPU')
        if built != 0:
            summary.record(name, 'FAILED (the builds failed)', 0)
        elif tested is None:
            summary.record(
                name, f'not reached (budget of {check.clock.budget} s spent)',
                0)
        else:
            summary.record(name, outcome(tested),
                           int(time.monotonic() - start))
        summary.tail += [f'- {line}' for line in lines]


def thread_scaling(check, best):
    found = glob.glob(
        osp.join(REPO, 'build', 'kernels', str(best), 'mmseg_ssanet', 'ops',
                 '_C*.so'))
    if not found:
        check.summary.record(
            '7. thread scaling',
            f'FAILED: no plain build of the kernel ({best}) to time', 0)
        return
    if check.mode == 'gpu':
        options = ['--repeats', '2']
    else:
        options = [
            '--sizes', '16x32', '32x64', '--batches', '1', '2', '--threads',
            '1', '2', '--channels', '64', '--repeats', '2'
        ]
    work = check.path('threads')
    check.part(
        f'7. thread scaling ({best})',
        90,
        check.path('threads.log'),
        [PY, 'tools/analysis_tools/benchmark_threads.py', '--out', work] +
        options,
        env=dict(check.env, SSANET_CPP_EXTENSION=found[0]))
    check._keep(osp.join(work, 'threads.md'), 'threads.md', work)


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument('out_dir', help='where the summary and logs go')
    parser.add_argument(
        '--cpu',
        action='store_true',
        help='the CPU rehearsal, even where CUDA is present')
    parser.add_argument(
        '--wheels', help='a folder of wheels: the OpenMMLab stack')
    parser.add_argument(
        '--budget',
        type=int,
        default=int(os.environ.get('DEVICE_CHECK_BUDGET_S', 0)) or None,
        help='seconds for all parts (default 480 on a GPU, 900 on CPU; '
        'DEVICE_CHECK_BUDGET_S sets it too)')
    args = parser.parse_args(argv)
    if args.wheels and not glob.glob(osp.join(args.wheels, '*.whl')):
        parser.error(f'--wheels {args.wheels}: no .whl files there')
    os.chdir(REPO)
    check = Check(args)
    try:
        check.models = check.install_wheels()
        check.describe_machine()
        isas, best = kernel_variants(check.mode)
        sanitize = check.mode == 'gpu' and osp.isfile(
            check._output(['gcc', '-print-file-name=libasan.so']))
        builds = KernelBuilds(check, isas, best, sanitize)
        check.operator_tests()
        check.triton_variants()
        check.gpu_report()
        check.model_runs()
        check.table2()
        check.triton_sanitized()
        builds.finish()
        thread_scaling(check, best)
    finally:
        if check.site:
            shutil.rmtree(check.site, ignore_errors=True)
        for tmp in glob.glob(check.path('*.tmp')):
            os.remove(tmp)
    check.summary.write()
    print(open(check.path('summary.md')).read())
    return 1 if check.summary.failed() else 0


if __name__ == '__main__':
    sys.exit(main())
