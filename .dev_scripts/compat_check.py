"""The plugin on the stacks its users have (`make compat-check`), each in a
throwaway venv with a copy of this checkout (as an sdist, no .git).
`.ci/run` runs it; any failed stack fails it.

  canonical  Python 3.11, torch 2.1.2 (PyPI's build: CUDA 12.1, runs on
             CPU) with its triton 2.1.0, numpy 1.x, mmcv 2.1.0 through
             `mim install mmcv==2.1.0`, mmengine 0.10.7, mmseg 1.2.2,
             installed command for command as docs/installation.md says;
             then the operator contract, the model and checkpoint tests,
             the demo config through `mim train` and `mim test`, and last,
             with numpy 2 installed over it, the import naming the numpy
             to install;
  py39       Python 3.9, torch 2.1.2: the operator alone, its contract;
  newest     Python 3.11, the newest torch pip installs here with its
             triton: the operator alone, its contract on the CPU backends,
             the Triton kernels against the equations under the
             interpreter, and their register use;
  py313      Python 3.13, installed by `make env` (the pinned stack: torch
             2.13.0 with the triton it pins, mmcv 2.1.0, mmseg 1.2.2): the
             operator contract on the CPU backends, the mmcv source fixes,
             the Triton kernels' register use (their contract under the
             interpreter is make test's), the demo config through
             `mim train` and `mim test`.

    python3 .dev_scripts/compat_check.py [OUT_DIR] [--stacks NAME ...]

  MMCV21_WHEELS=DIR  mmcv 2.1.0 built for torch 2.1.2 and Python 3.11
      (default ../shared/wheels/torch2.1-cp311, when there), served to
      `mim install` laid out as OpenMMLab's download site (MMCV_BASE_URL);
      without it mmcv is built from source, about 40 minutes.
  PY313_WHEELS=DIR  mmcv 2.1.0 built for torch 2.13.0 and Python 3.13
      (default ../shared/wheels/py313, when there), passed to `make env` as
      MMCV_WHEELS; without it `make env` builds mmcv from its fixed source
      (tools/misc/build_mmcv.py), about 27 minutes.

Writes OUT_DIR/summary.md (stack, versions, what ran, result, seconds) and
one log per stack.
"""
import glob
import os
import os.path as osp
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from dev_common import (REPO, argument_parser, copy_checkout, python_of,
                        run_logged)

STACKS = ('canonical', 'py39', 'newest', 'py313')
# docs/installation.md, "GPU install on the stack mmseg users have",
# command for command (tests/test_docs.py holds the two together)
CANONICAL_INSTALL = (
    "pip install 'setuptools>=77,<81' wheel ninja",
    'pip install -r requirements/torch2.1.txt -r requirements/mim.txt',
    'pip install --no-deps openmim==0.3.9',
    'mim install mmcv==2.1.0',
    'pip install --no-build-isolation -e .',
)
# without a prebuilt wheel for the fake download site: mmcv's source
MMCV_FROM_SOURCE = 'pip install --no-build-isolation mmcv==2.1.0'
# The operator's contract: every backend against the equations, float64
# gradients, edge cases, both registration paths, the sampling geometry.
OPERATOR_TESTS = [
    'tests/test_ops.py', 'tests/test_features.py', 'tests/test_backend_cpp.py',
    'tests/test_backend_reference.py', 'tests/test_backend_triton.py',
    'tests/test_sampling_geometry.py'
]
# mmcv's deformable conv (the cross-check) and mmengine's checkpoints are
# not on a stack with torch alone
OPERATOR_ONLY = ['-k', 'not mmcv_deform_conv and not load_trusted']
MODEL_TESTS = [
    'tests/test_snl_block.py', 'tests/test_snl_head.py', 'tests/test_shims.py',
    'tests/test_checkpoint_allowlist.py', 'tests/test_publish.py',
    'tests/test_bad_setup.py', 'tests/test_flops.py', 'tests/test_layers.py',
    'tests/test_tools.py::test_onnx_export_matches_pytorch'
]
DEMO_CONFIG = 'configs/demo/ssanet_mobilenetv2_cpu_synthetic-cityscapes.py'
PYTEST = ['python', '-m', 'pytest', '-q', '-p', 'no:cacheprovider']
IMPORTS = ('import mmseg_ssanet, mmcv, mmseg, torch, sys; print("imported:'
           ' Python", sys.version.split()[0], "torch", torch.__version__, '
           '"mmcv", mmcv.__version__, "mmseg", mmseg.__version__)')
VERSIONS = '''import sys
import importlib.metadata as md
def v(p):
    try:
        return md.version(p)
    except md.PackageNotFoundError:
        return '-'
print(f"Python {sys.version.split()[0]}, torch {v('torch')}, triton "
      f"{v('triton')}, numpy {v('numpy')}, mmcv {v('mmcv')}, mmengine "
      f"{v('mmengine')}, mmseg {v('mmsegmentation')}")'''


def shared_wheels(variable, default):
    folder = os.environ.get(variable) or (default
                                          if osp.isdir(default) else None)
    return osp.abspath(folder) if folder else None


class Stack:
    """One stack: its venv, its copy of the checkout, its log."""

    def __init__(self, name, tmp, out):
        self.name = name
        self.venv = osp.join(tmp, f'venv-{name}')
        self.src = osp.join(tmp, f'src-{name}')
        self.tmp = tmp
        self.log = osp.join(out, f'{name}.log')
        self.installed = False
        self.install_s = 0
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ('SSANET_CPP_EXTENSION', 'TRITON_INTERPRET')
        }
        # two stacks test at a time on two cores: one thread each; the
        # Triton kernels' register use at the widest paper shape and the
        # small-channel one (make test compiles all four)
        self.env.update(
            SSANET_RESOURCE_SHAPES='256,512,81 16,24,9',
            PYTHONUNBUFFERED='1',
            PIP_DISABLE_PIP_VERSION_CHECK='1',
            OMP_NUM_THREADS='1',
            VIRTUAL_ENV=self.venv,
            PATH=f'{self.venv}/bin:{os.environ["PATH"]}')

    def say(self, text):
        with open(self.log, 'a') as f:
            f.write(text + '\n')

    def run(self, *commands, env=None):
        """Each command (argv list or shell-quoted string) in the checkout
        with the venv first on PATH, until one fails; its exit status."""
        for cmd in commands:
            argv = shlex.split(cmd) if isinstance(cmd, str) else cmd
            self.say(f'$ {shlex.join(argv)}')
            status = run_logged(
                argv, self.log, env=env or self.env, cwd=self.src)
            if status:
                self.say(f'exit status {status}')
                return status
        return 0

    def python(self, version):
        python = python_of(version)
        if not python:
            self.say(f'no Python {version} (pyenv or PATH)')
        return python

    # -- installs ----------------------------------------------------------

    def install(self):
        start = time.monotonic()
        copy_checkout(self.src)
        installer = getattr(self, f'install_{self.name}', None)
        status = installer() if installer else self.install_operator(*dict(
            py39=('3.9', 'torch==2.1.2', 'numpy<2'),
            newest=('3.11', '--upgrade', 'torch', 'numpy'))[self.name])
        self.installed = status == 0
        self.install_s = int(time.monotonic() - start)

    def make_venv(self, version):
        python = self.python(version)
        return 1 if not python else self.run([python, '-m', 'venv', self.venv])

    def install_canonical(self):
        if self.make_venv('3.11'):
            return 1
        commands = list(CANONICAL_INSTALL)
        wheels = shared_wheels(
            'MMCV21_WHEELS',
            osp.join(REPO, '..', 'shared', 'wheels', 'torch2.1-cp311'))
        env = dict(self.env)
        if wheels:  # OpenMMLab's site as mim reads it
            dist = osp.join(self.tmp, 'openmmlab', 'mmcv', 'dist', 'cu121',
                            'torch2.1.0')
            os.makedirs(dist)
            names = []
            for wheel in glob.glob(osp.join(wheels, 'mmcv-2.1.0-*.whl')):
                shutil.copy(wheel, dist)
                names.append(osp.basename(wheel))
            with open(osp.join(dist, 'index.html'), 'w') as f:
                f.write(''.join(f'<a href="{n}">{n}</a>\n' for n in names))
            env['MMCV_BASE_URL'] = f'file://{self.tmp}/openmmlab'
        else:  # no prebuilt wheel reachable here: the source build
            commands[commands.index('mim install mmcv==2.1.0')] = \
                MMCV_FROM_SOURCE
            env['MMCV_WITH_OPS'] = '1'
        # and what the tests need besides
        commands.append("pip install pytest hypothesis onnx onnxruntime "
                        "'numpy<2'")
        return self.run(*commands, env=env)

    def install_operator(self, version, *torch_spec):
        # docs/installation.md, "The operator alone"
        return self.make_venv(version) or self.run(
            [
                'pip', 'install', 'setuptools>=77,<81', 'wheel', 'ninja',
                *torch_spec
            ], 'pip install --no-deps --no-build-isolation -e .',
            'pip install pytest hypothesis')

    def install_py313(self):  # the README's `make env`
        python = self.python('3.13')
        wheels = shared_wheels(
            'PY313_WHEELS', osp.join(REPO, '..', 'shared', 'wheels', 'py313'))
        env = {k: v for k, v in self.env.items() if k != 'VIRTUAL_ENV'}
        return 1 if not python else self.run([
            'make', 'env', f'PYTHON={python}', f'VENV={self.venv}',
            f'MMCV_WHEELS={wheels or ""}'
        ],
                                             env=env)

    # -- tests -------------------------------------------------------------

    def test(self):
        if self.name == 'canonical':  # + the kernels built by triton 2.1
            return self.run(['python', '-c', IMPORTS], PYTEST +
                            OPERATOR_TESTS + MODEL_TESTS +
                            ['tests/test_triton_resources.py']) or \
                self.demo() or self.numpy2_is_named()
        if self.name == 'py313':  # the interpreter runs: make test's
            return self.run([
                'python', '-c', IMPORTS
            ], PYTEST + OPERATOR_TESTS + [
                'tests/test_build_mmcv.py', 'tests/test_triton_resources.py',
                '-k', 'not triton or fits_the_register_file'
            ]) or self.demo()
        # newest: + the kernels built by the triton that torch brings, and
        # under its interpreter the equations (make test runs the whole
        # Triton contract, the kernels' behaviour, not the interpreter's)
        select = OPERATOR_ONLY
        if self.name == 'newest':
            select = [
                'tests/test_triton_resources.py', '-k',
                f'({OPERATOR_ONLY[1]}) and (not triton or '
                'fits_the_register_file or matches_the_equations)'
            ]
        return self.run([
            'python', '-c', 'import torch, mmseg_ssanet.ops; import triton; '
            'print("imported: torch", torch.__version__, "triton", '
            'triton.__version__)'
        ], PYTEST + OPERATOR_TESTS + select)

    def options(self, data, *more):
        proc = subprocess.run([
            'python', 'tools/misc/short_run_options.py', DEMO_CONFIG, data,
            '--size', '64x128', *more
        ],
                              cwd=self.src,
                              env=self.env,
                              capture_output=True,
                              text=True)
        self.say(proc.stderr)
        return proc.stdout.split()

    def demo(self):
        """The demo config through mim: 10 iterations, then mim test."""
        data, work = 'work_dirs/compat_data', 'work_dirs/compat_demo'
        if self.run([
                'python', 'tools/misc/generate_data.py', 'cityscapes', data,
                '--num-train', '8', '--num-val', '4', '--size', '64x128',
                '--seed', '0'
        ]) or self.run([
                'mim', 'train', 'mmseg', DEMO_CONFIG, '--gpus', '0',
                '--work-dir', work, '--cfg-options', *self.options(
                    data, '--iters', '10', '--batch', '2', '--no-val')
        ]):
            return 1
        logs = ''.join(
            open(p).read()
            for p in glob.glob(osp.join(self.src, work, '*', '*.log')))
        if not re.search(r'Iter\(train\) \[10/10\].* loss: [0-9]', logs):
            self.say('no finite loss at iteration 10')
            return 1
        if self.run([
                'mim', 'test', 'mmseg', DEMO_CONFIG, '--gpus', '0',
                '--work-dir', work, '--checkpoint', f'{work}/iter_10.pth',
                '--cfg-options', *self.options(data, '--no-val')
        ]):
            return 1
        if 'mIoU:' not in open(self.log).read():
            self.say('mim test printed no mIoU')
            return 1
        return 0

    def numpy2_is_named(self):
        """Last: numpy 2 over torch 2.1 (one `pip install` of a package
        that wants it); the import names the numpy to install, before any
        training. Then numpy 1 back, the stack as it was."""
        if self.run("pip install -q 'numpy>=2'"):
            return 1
        proc = subprocess.run(['python', '-c', 'import mmseg_ssanet'],
                              cwd=self.src,
                              env=self.env,
                              capture_output=True,
                              text=True)
        self.say(proc.stderr[-3000:])
        if proc.returncode == 0:
            self.say('import mmseg_ssanet passed beside numpy 2')
            return 1
        if 'cannot use the installed numpy' not in proc.stderr or \
                'pip install "numpy<2"' not in proc.stderr:
            self.say('the import failed without naming numpy<2')
            return 1
        return self.run("pip install -q 'numpy<2'")

    def summary_row(self, status, test_s):
        python = osp.join(self.venv, 'bin', 'python')
        versions = subprocess.run(
            [python, '-c', VERSIONS], capture_output=True,
            text=True).stdout.strip() if osp.exists(python) else '?'
        text = open(self.log, errors='replace').read()
        counts = re.findall(
            r'^=*\s*(\d+ (?:passed|failed).*?)\s*=*$', text, flags=re.M)
        tests = counts[-1] if counts else 'no tests ran'
        if self.name in ('canonical', 'py313') and 'mIoU:' in text:
            tests += '; demo: mim train 10 its + mim test'
        result = 'ok' if status == 0 else 'FAILED'
        return (f'| {self.name} | {versions} | {tests} | {result} | install '
                f'{self.install_s} s, tests {test_s} s |')


def test_lane(stacks):
    rows, failed = [], False
    for stack in stacks:
        start = time.monotonic()
        if stack.installed:
            status = stack.test()
        else:
            stack.say('install failed')
            status = 1
        rows.append(stack.summary_row(status, int(time.monotonic() - start)))
        failed |= status != 0
    return rows, failed


def main(argv=None):
    parser = argument_parser(__doc__)
    parser.add_argument(
        'out_dir',
        nargs='?',
        default='work_dirs/compat_check',
        help='summary and logs (default %(default)s)')
    parser.add_argument(
        '--stacks',
        nargs='+',
        choices=STACKS,
        default=os.environ.get('STACKS', ' '.join(STACKS)).split(),
        help='which stacks (default all; STACKS="..." sets it too)')
    args = parser.parse_args(argv)
    out = osp.abspath(args.out_dir)
    os.makedirs(out, exist_ok=True)
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        stacks = [Stack(name, tmp, out) for name in args.stacks]
        for stack in stacks:
            open(stack.log, 'w').close()
        # installs at once (downloads and disk), then the tests in two
        # lanes on the two cores, about equally long: the longest stack
        # (canonical: the models, a demo and numpy 2) with the shortest
        with ThreadPoolExecutor(len(stacks)) as pool:
            list(pool.map(Stack.install, stacks))
        print(f'installed: {time.monotonic() - start:.0f} s', flush=True)
        lanes = [[s for s in stacks if s.name in ('canonical', 'py39')],
                 [s for s in stacks if s.name in ('py313', 'newest')]]
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(test_lane, [lane for lane in lanes]))
    rows = [row for lane_rows, _ in results for row in lane_rows]
    failed = any(bad for _, bad in results)
    summary = '\n'.join([
        f'# compat check, {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}'
        f', {time.monotonic() - start:.0f} s', '',
        '| stack | versions | tests | result | time |',
        '| --- | --- | --- | --- | --- |', *rows
    ]) + '\n'
    with open(osp.join(out, 'summary.md'), 'w') as f:
        f.write(summary)
    print(summary)
    for stack in stacks:
        if f'| {stack.name} |' in summary and \
                not re.search(rf'\| {stack.name} \|.*\| ok \|', summary):
            tail = open(stack.log, errors='replace').read().splitlines()[-40:]
            print(
                f'== {stack.name}: last lines of {stack.log}', *tail, sep='\n')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
