"""Memory-safety and ISA check of the fused C++ kernel (`make kernel-check`).

For each vector variant (default: the three the installed build carries
and picks at load time) the kernel is built for that ISA alone, with
AddressSanitizer + UndefinedBehaviorSanitizer and libstdc++ assertions
(setup.py's SSANET_ISA / SSANET_SANITIZE switches), into
build/kernels/<isa>-sanitize/, and the operator tests and the differential
fuzz run on it: python with the ASan runtime preloaded, the build loaded
through SSANET_CPP_EXTENSION. A sanitizer report aborts the process that
made it (the fuzz's worker or pytest), which fails the check. A variant
this CPU cannot execute is compiled and reported as not run (the hardware
decides, not the code).

    python .dev_scripts/check_kernel.py [ISA ...] [--phase build|test|all]
        [--no-sanitize] [--python PY]
    python .dev_scripts/check_kernel.py --runs ISA   (exit 0: this CPU runs it)

SSANET_FUZZ_EXAMPLES (default 150 here) sets the fuzz examples per backend.
"""
import glob
import os
import os.path as osp
import subprocess
import sys
import time

from dev_common import REPO, argument_parser

# CPU flags each level needs (x86-64 psABI), as /proc/cpuinfo names them
ISA_FLAGS = {
    'x86-64-v4':
    ('avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl', 'avx2', 'fma'),
    'x86-64-v3':
    ('avx2', 'fma', 'bmi1', 'bmi2', 'f16c', 'movbe', 'abm', 'xsave'),
    'x86-64': (),
}
# The C++ backend's tests: the Triton and pure-PyTorch ones run no code of
# ours natively and take most of the time under the sanitizers.
SELECT = 'not triton and not csr and not reference-'
# Not under ASan: a Python exception raised inside a backward (the double
# backward refusal) crosses torch's autograd engine as a C++ exception, and
# ASan's __cxa_throw interceptor, preloaded into a python it did not
# instrument, fails its own CHECK there (a plain autograd.Function that
# raises does the same: no code of ours). `make test` runs it.
SELECT_SANITIZED = SELECT + ' and not second_derivatives'
TESTS = ('tests/test_ops.py', 'tests/test_backend_cpp.py',
         'tests/test_ops_fuzz.py')


def missing_flags(isa):
    """The CPU flags ``isa`` needs that this CPU lacks."""
    flags = set()
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('flags'):
                flags = set(line.split(':', 1)[1].split())
                break
    return [flag for flag in ISA_FLAGS[isa] if flag not in flags]


def build_dir(isa, sanitize):
    return osp.join('build', 'kernels',
                    isa + ('-sanitize' if sanitize else ''))


def build(isa, sanitize, python):
    """Compile the kernel for ``isa`` alone; the log beside the build."""
    out = build_dir(isa, sanitize)
    os.makedirs(osp.join(REPO, out), exist_ok=True)
    env = dict(os.environ, SSANET_ISA=isa, SSANET_SANITIZE=str(int(sanitize)))
    with open(osp.join(REPO, out + '.log'), 'w') as log:
        proc = subprocess.run([
            python, 'setup.py', '-q', 'build_ext', '--build-lib', out,
            '--build-temp',
            osp.join(out, 'tmp')
        ],
                              cwd=REPO,
                              env=env,
                              stdout=log,
                              stderr=subprocess.STDOUT)
    if proc.returncode:
        with open(osp.join(REPO, out + '.log')) as log:
            print(log.read())
        raise SystemExit(f'build of {isa} failed')


def built_library(isa, sanitize):
    found = glob.glob(
        osp.join(REPO, build_dir(isa, sanitize), 'mmseg_ssanet', 'ops',
                 '_C*.so'))
    if not found:
        raise SystemExit(f'no build of {isa} in {build_dir(isa, sanitize)} '
                         '(run --phase build first)')
    return found[0]


def sanitizer_env():
    runtime = subprocess.run(['gcc', '-print-file-name=libasan.so'],
                             capture_output=True,
                             text=True).stdout.strip()
    if not osp.isfile(runtime):
        raise SystemExit("no ASan runtime (gcc's libasan.so)")
    # detect_leaks=0: the interpreter keeps memory until exit by design
    return dict(
        LD_PRELOAD=runtime,
        ASAN_OPTIONS='detect_leaks=0:abort_on_error=1:'
        'detect_stack_use_after_return=1',
        UBSAN_OPTIONS='halt_on_error=1:print_stacktrace=1')


def run_tests(isa, sanitize, python, library):
    select = SELECT_SANITIZED if sanitize else SELECT
    # Without mmcv (a bare GPU machine) the one comparison with mmcv's
    # deform_conv2d cannot run; every other test needs torch alone.
    if subprocess.run([python, '-c', 'import mmcv.ops'],
                      capture_output=True).returncode:
        print("== mmcv's ops not importable: "
              'test_offset_layout_is_mmcv_deform_conv not run')
        select += ' and not mmcv_deform_conv'
    env = dict(
        os.environ,
        SSANET_CPP_EXTENSION=library,
        SSANET_EXPECT_BUILD=isa + ('-sanitize' if sanitize else ''))
    if sanitize:
        env.update(sanitizer_env())
    return subprocess.run([
        python, '-m', 'pytest', *TESTS, '-k', select, '-q', '-p',
        'no:cacheprovider'
    ],
                          cwd=REPO,
                          env=env).returncode


def check(isa, phase, sanitize, python):
    """One variant: a summary line, and whether it failed."""
    name = isa + ('-sanitize' if sanitize else '')
    start = time.monotonic()
    took = (lambda: f'{time.monotonic() - start:.0f} s')  # noqa: E731
    if phase != 'test':
        print(
            f'== {name}: building into {build_dir(isa, sanitize)}', flush=True)
        build(isa, sanitize, python)
    library = built_library(isa, sanitize)
    if phase == 'build':
        return f'{name}: built ({took()})', False
    missing = missing_flags(isa)
    if missing:
        print(f'== {name}: compiled, NOT RUN: this CPU lacks '
              f'{" ".join(missing)}')
        return (f'{name}: compiled, not run (CPU lacks {" ".join(missing)})',
                False)
    print(
        f'== {name}: operator tests and fuzz '
        f'({os.environ["SSANET_FUZZ_EXAMPLES"]} examples)',
        flush=True)
    if run_tests(isa, sanitize, python, library):
        return f'{name}: FAILED ({took()})', True
    return (f'{name}: passed ({took()}'
            f'{" with the build" if phase == "all" else ""})', False)


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument(
        'isas',
        nargs='*',
        metavar='ISA',
        help=f'variants ({", ".join(ISA_FLAGS)}; default all)')
    parser.add_argument(
        '--phase',
        choices=('build', 'test', 'all'),
        default='all',
        help='only build, or only test what a build phase left '
        '(the device check builds while the GPU is busy)')
    parser.add_argument(
        '--no-sanitize',
        action='store_true',
        help='plain single-ISA builds (no sanitizers)')
    parser.add_argument(
        '--python',
        default=sys.executable,
        help='the interpreter that builds and tests')
    parser.add_argument(
        '--runs',
        metavar='ISA',
        choices=list(ISA_FLAGS),
        help='only say (exit status) whether this CPU executes ISA')
    args = parser.parse_args(argv)
    if args.runs:
        return 1 if missing_flags(args.runs) else 0
    unknown = [isa for isa in args.isas if isa not in ISA_FLAGS]
    if unknown:
        parser.error(f'unknown ISA {" ".join(unknown)} (choose from '
                     f'{", ".join(ISA_FLAGS)})')
    os.environ.setdefault('SSANET_FUZZ_EXAMPLES', '150')
    summary, failed = [], False
    for isa in args.isas or list(ISA_FLAGS):
        line, bad = check(isa, args.phase, not args.no_sanitize, args.python)
        summary.append(line)
        failed |= bad
    for line in summary:
        print(f'kernel check: {line}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
