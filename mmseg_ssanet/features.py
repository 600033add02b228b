"""What the installed torch and triton can do, asked of them.

The plugin supports torch 2.1 (the stack of mmcv's official 2.1.0 wheels,
which most mmseg 1.x users run) through the newest torch. Where an API
came later, this module asks the installed library for the feature
(``hasattr``, a signature, a probe) and gives the rest of the package one
way to use it; nothing else compares version numbers. docs/installation.md
has the table of what each feature needs and what happens without it.

Needs torch alone (triton is imported only when asked about).
"""
import functools
import importlib.util
import inspect
import io
import os
from typing import Callable, Iterable, Optional, Tuple

import torch
from torch.autograd.forward_ad import unpack_dual

# The oldest torch the package runs on is 2.1 (CI tests 2.1 to 2.14);
# torch.compiler.disable, which the csr backend uses, is what 2.0 lacks.
if not hasattr(getattr(torch, 'compiler', None), 'disable'):
    raise ImportError(
        f'mmseg_ssanet needs torch >= 2.1 (it uses torch.compiler.disable); '
        f'found torch {torch.__version__}. mmcv\'s prebuilt 2.1.0 wheels '
        f'exist for torch 2.1: docs/installation.md')

# -- registering the fused kernels as torch operators ---------------------

#: ``torch.library.custom_op`` (torch >= 2.4): the kernels are torch ops with
#: a fake implementation and an autograd formula, so torch.compile traces
#: through them (no graph break), ``opcheck`` checks them and torch.export
#: exports them. Without it the same kernels run through
#: ``torch.autograd.Function`` (same values, gradients and errors).
HAS_CUSTOM_OP = hasattr(torch.library, 'custom_op')


class FunctionOp:
    """The stand-in for a ``torch.library.custom_op`` where torch has none.

    It takes the same decorations (``register_fake``, ``register_autograd``)
    and is called the same way. With an autograd formula registered, calls
    go through a ``torch.autograd.Function`` whose forward runs the kernel
    without recording a graph and whose backward is that formula; without
    one the kernel is called directly (as torch calls a custom op that has
    no autograd formula in a backward pass).
    """

    def __init__(self, name: str, kernel: Callable):
        self.name = name
        self.kernel = kernel
        self.signature = inspect.signature(kernel)
        self._function = None
        functools.update_wrapper(self, kernel)

    @staticmethod
    def function_name(op_name: str) -> str:
        """The autograd.Function's class name ('ns::op' -> 'ns_op')."""
        return op_name.replace('::', '_')

    def register_fake(self, fake: Callable) -> Callable:
        return fake  # shapes only matter to tracing, which needs custom_op

    def register_autograd(self, backward: Callable, *,
                          setup_context: Callable) -> None:
        kernel = self.kernel

        def forward(ctx, *inputs):
            output = kernel(*inputs)
            setup_context(ctx, inputs, output)
            # a list of tensors (a List[Tensor] op) is tracked as a tuple
            return tuple(output) if isinstance(output, list) else output

        self._function = type(
            self.function_name(self.name), (torch.autograd.Function, ),
            dict(
                forward=staticmethod(forward),
                backward=staticmethod(backward)))

    def __call__(self, *args, **kwargs):
        # Function.apply takes positional arguments only (torch < 2.4)
        bound = self.signature.bind(*args, **kwargs)
        if self._function is None:
            return self.kernel(*bound.args)
        return self._function.apply(*bound.args)


def custom_op(name: str, *, mutates_args=(), device_types=None):
    """``torch.library.custom_op`` where torch has it, else a
    :class:`FunctionOp` with the same decorations."""
    if HAS_CUSTOM_OP:
        return torch.library.custom_op(
            name, mutates_args=mutates_args, device_types=device_types)
    return lambda kernel: FunctionOp(name, kernel)


def traced_names(op_name: str) -> Tuple[str, ...]:
    """The names an op made by :func:`custom_op` has in a TorchScript
    trace (FLOP counting): its own, or its autograd Function's."""
    return (op_name, 'prim::PythonOp.' + FunctionOp.function_name(op_name))


def is_compiling() -> bool:
    """Whether dynamo is tracing the caller (torch.compile, export)."""
    compiler = getattr(torch, 'compiler', None)
    if hasattr(compiler, 'is_compiling'):  # torch >= 2.3
        return compiler.is_compiling()
    return torch._dynamo.is_compiling()


def has_forward_tangent(*tensors: torch.Tensor) -> bool:
    """Whether a tensor carries a forward-mode AD tangent
    (``torch.autograd.forward_ad``, ``torch.func.jvp``); False while
    dynamo traces, which runs no forward AD of its own."""
    if is_compiling():
        return False
    return any(unpack_dual(t).tangent is not None for t in tensors)


# -- autocast -------------------------------------------------------------


def _autocast_takes_device_type() -> bool:
    try:  # torch >= 2.4
        torch.is_autocast_enabled('cpu')
    except TypeError:
        return False
    return True


# decided once: torch.compile traces the operator's front end, which asks
_AUTOCAST_TAKES_DEVICE_TYPE = _autocast_takes_device_type()


def _has_autocast(device_type: str) -> bool:
    try:
        torch.is_autocast_enabled(device_type)
    except (RuntimeError, TypeError):  # no autocast there ('meta', ...)
        return False
    return True


# the device types with an autocast (a constant set, which dynamo traces)
_AUTOCAST_DEVICE_TYPES = frozenset(
    t for t in ('cpu', 'cuda', 'xpu', 'hpu', 'mps', 'xla', 'mtia')
    if _has_autocast(t)) if _AUTOCAST_TAKES_DEVICE_TYPE else frozenset(
        ('cpu', 'cuda'))


def autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` in this thread (False
    on a device type torch has no autocast for)."""
    if device_type not in _AUTOCAST_DEVICE_TYPES:
        return False
    if _AUTOCAST_TAKES_DEVICE_TYPE:
        return torch.is_autocast_enabled(device_type)
    if device_type == 'cpu':
        return torch.is_autocast_cpu_enabled()
    if device_type == 'cuda':
        return torch.is_autocast_enabled()
    return False


# -- loading checkpoints --------------------------------------------------

#: ``torch.serialization.add_safe_globals``/``safe_globals`` (torch >= 2.4
#: and 2.5): classes a ``weights_only`` load may rebuild can be allowed.
HAS_SAFE_GLOBALS = hasattr(torch.serialization, 'safe_globals')


@functools.lru_cache(maxsize=None)
def loads_weights_only_by_default() -> bool:
    """Whether a plain ``torch.load(f)`` refuses arbitrary classes (the
    default since torch 2.6, or ``TORCH_FORCE_WEIGHTS_ONLY_LOAD``): tried
    on a tiny in-memory file holding one class outside the allow-list."""
    buffer = io.BytesIO()
    torch.save({'probe': io.BytesIO}, buffer)
    buffer.seek(0)
    try:
        torch.load(buffer)
    except Exception:  # noqa: BLE001  (UnpicklingError, RuntimeError...)
        return True
    return False


def load_trusted(path: str, allowed: Iterable[type]):
    """``torch.load`` of a checkpoint this project or mmengine wrote, on CPU.

    Where torch can allow-list classes it loads with ``weights_only=True``
    and ``allowed`` added; an older torch cannot, and loads it as mmengine
    does there (a full unpickle: give it only files you trust).
    """
    if HAS_SAFE_GLOBALS:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(path, map_location='cpu', weights_only=True)
    return torch.load(path, map_location='cpu', weights_only=False)


# -- ONNX export ----------------------------------------------------------


def onnx_export_options() -> dict:
    """Keyword arguments that select the TorchScript-based exporter: torch
    >= 2.5 has a ``dynamo`` switch (its default became True in 2.9)."""
    parameters = inspect.signature(torch.onnx.export).parameters
    return dict(dynamo=False) if 'dynamo' in parameters else {}


# -- scaled dot product attention ----------------------------------------


def sdpa_backend(name: str):
    """A context that restricts ``F.scaled_dot_product_attention`` to one
    backend ('MATH', 'FLASH_ATTENTION', 'EFFICIENT_ATTENTION'): torch's
    ``torch.nn.attention.sdpa_kernel`` (2.3), else the older
    ``torch.backends.cuda.sdp_kernel``."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:
        flags = dict(
            enable_math=name == 'MATH',
            enable_flash=name == 'FLASH_ATTENTION',
            enable_mem_efficient=name == 'EFFICIENT_ATTENTION')
        return torch.backends.cuda.sdp_kernel(**flags)
    return sdpa_kernel([getattr(SDPBackend, name)])


# -- triton ---------------------------------------------------------------

#: The first triton with what the SNL kernels use, per device type: on
#: CUDA, and on CPU tensors through triton's interpreter.
TRITON_NEEDED = {
    'cuda':
    'triton >= 2.1 (the one torch 2.1 brings)',
    'cpu':
    'a triton with its CPU interpreter, TRITON_INTERPRET=1 (tested: '
    '3.6 to 3.8)'
}


def triton_missing(device_type: str) -> Optional[str]:
    """None if the installed triton has what the SNL kernels use on
    ``device_type`` ('cuda', or 'cpu' through the interpreter), else what
    it lacks, naming the triton needed."""
    if importlib.util.find_spec('triton') is None:
        return 'triton is not installed (pip install triton)'
    import triton
    import triton.language as tl
    lacks = [
        f'tl.{name}' for name in ('static_range', 'debug_barrier')
        if not hasattr(tl, name)
    ]
    if device_type == 'cpu' and importlib.util.find_spec(
            'triton.runtime.interpreter') is None:
        lacks.append('the CPU interpreter (TRITON_INTERPRET=1)')
    if not lacks:
        return None
    return (f'triton {triton.__version__} lacks {", ".join(lacks)}; the SNL '
            f'kernels need {TRITON_NEEDED[device_type]}')


def triton_register_cap(registers: int) -> dict:
    """The launch option that caps a kernel's registers per thread
    (``maxnreg``, triton >= 3.0), or nothing where the installed triton
    has no such option (ptxas then chooses, up to 255)."""
    return {'maxnreg': registers} if _has_maxnreg() else {}


@functools.lru_cache(maxsize=None)
def _has_maxnreg() -> bool:
    try:
        from triton.backends.nvidia.compiler import CUDAOptions
    except ImportError:
        return False
    return 'maxnreg' in getattr(CUDAOptions, '__dataclass_fields__', {})


def triton_dot_takes_input_precision() -> bool:
    """Whether ``tl.dot`` takes ``input_precision`` (triton 3.x), which
    keeps float32 products exact (``'ieee'``) whatever
    ``TRITON_F32_DEFAULT`` says; ``allow_tf32=False`` yields to that
    variable, and is triton 2.1's only way."""
    import triton.language as tl
    return 'input_precision' in inspect.signature(tl.dot).parameters


def triton_compile_ptx(fn, signature: dict, constexprs: dict, arch: int,
                       **options) -> Tuple[str, int]:
    """PTX of the ``@triton.jit`` kernel ``fn`` for NVIDIA compute
    capability ``arch``, compiled with no GPU present, and the shared
    memory in bytes a launch of it takes.

    Args:
        fn: the kernel.
        signature (dict): each argument's name -> its type (``'*fp32'``,
            ``'i32'``, ``'constexpr'``).
        constexprs (dict): each constexpr argument's name -> its value.
        arch (int): 80, 90 (sm_90a), ...
        **options: ``num_warps``, ``num_stages`` and the register cap
            (:func:`triton_register_cap`).

    triton 3: ``triton.compile`` of an ``ASTSource`` for a ``GPUTarget`` (its
    ``constexprs`` argument: 3.3 and later; an earlier triton 3 gets an error
    saying so). triton 2.x: ``compile(fn, signature=..., constants=...,
    cc=arch)`` by argument index, with its launcher stub left unbuilt (it links
    ``libcuda.so``, which needs a driver) and no ``CompiledKernel`` made of the
    result.
    """
    import triton
    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError:
        return _triton2_compile_ptx(fn, signature, constexprs, arch, options)
    if 'constexprs' not in inspect.signature(ASTSource).parameters:
        raise RuntimeError(
            f'compiling the SNL kernels ahead of time needs triton 2.x or '
            f'>= 3.3 (ASTSource(constexprs=...)); found {triton.__version__}')
    compiled = triton.compile(
        ASTSource(fn=fn, signature=signature, constexprs=constexprs),
        target=GPUTarget('cuda', arch, 32),
        options=options)
    return compiled.asm['ptx'], compiled.metadata.shared


def _triton2_compile_ptx(fn, signature, constexprs, arch, options):
    from triton.compiler import compiler
    names = fn.arg_names
    kept = compiler.make_stub, compiler.CompiledKernel
    compiler.make_stub = lambda *args, **kwargs: ''
    compiler.CompiledKernel = (lambda fn, so_path, metadata, asm:
                               (asm, metadata))
    try:
        asm, metadata = compiler.compile(
            fn,
            signature={
                names.index(name): kind
                for name, kind in signature.items() if kind != 'constexpr'
            },
            constants={
                names.index(name): value
                for name, value in constexprs.items()
            },
            device_type='cuda',
            cc=arch,
            **options)
    finally:
        compiler.make_stub, compiler.CompiledKernel = kept
    return asm['ptx'], metadata['shared']


def triton_ptxas() -> str:
    """The ptxas inside the installed triton wheel."""
    import triton
    root = os.path.dirname(triton.__file__)
    places = (('backends', 'nvidia', 'bin'), ('third_party', 'cuda', 'bin'))
    for where in places:  # triton >= 3.0, triton 2.x
        path = os.path.join(root, *where, 'ptxas')
        if os.path.isfile(path):
            return path
    raise RuntimeError(f'no ptxas in triton {triton.__version__} at {root}')


__all__ = [
    'HAS_CUSTOM_OP', 'FunctionOp', 'custom_op', 'traced_names', 'is_compiling',
    'has_forward_tangent', 'autocast_enabled', 'HAS_SAFE_GLOBALS',
    'loads_weights_only_by_default', 'load_trusted', 'onnx_export_options',
    'sdpa_backend', 'TRITON_NEEDED', 'triton_missing', 'triton_register_cap',
    'triton_compile_ptx', 'triton_ptxas'
]
