"""The package's layers point one way (README, "Layout").

    features, version  <  ops  <  utils  <  models, datasets
                       <  engine, benchmark  <  apis  <  shims
                       <  the package root

A module imports only from its own layer's package or from layers below;
nothing imports the package root. Checked two ways: every import statement
(those inside functions too), and each layer imported in a fresh process
with the layers above it blocked.
"""
import ast
import json
import os.path as osp
import sys

import pytest

from .conftest import ROOT, run_cli

PACKAGE = 'mmseg_ssanet'
RANK = {
    'features': 0,
    'version': 0,
    'ops': 1,
    'utils': 2,
    'models': 3,
    'datasets': 3,
    'engine': 4,
    'benchmark': 4,
    'apis': 5,
    'shims': 6,
    '': 7
}


def _layer(module):
    """'mmseg_ssanet.models.blocks' -> 'models'; the root -> ''."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else ''


def _modules():
    for path in sorted(
            __import__('glob').glob(
                osp.join(ROOT, PACKAGE, '**', '*.py'), recursive=True)):
        rel = osp.relpath(path, ROOT)[:-3].replace(osp.sep, '.')
        is_package = rel.endswith('.__init__')
        yield rel[:-len('.__init__')] if is_package else rel, path, \
            is_package


def _imports(module, path, is_package):
    """Every plugin module ``module`` imports, resolved, with its line."""
    package = module if is_package else module.rpartition('.')[0]
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split('.')[0] == PACKAGE:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                target = '.'.join(base +
                                  ([node.module] if node.module else []))
            else:
                target = node.module or ''
            if target.split('.')[0] != PACKAGE:
                continue
            if node.module is None:  # from .. import name: a submodule?
                for alias in node.names:
                    sub = osp.join(ROOT, *target.split('.'), alias.name)
                    yield (f'{target}.{alias.name}' if osp.exists(sub)
                           or osp.exists(sub + '.py') else target, node.lineno)
            else:
                yield target, node.lineno


def test_imports_point_down():
    wrong = []
    for module, path, is_package in _modules():
        layer = _layer(module)
        for target, line in _imports(module, path, is_package):
            to = _layer(target)
            if target == PACKAGE and module != PACKAGE:
                wrong.append(f'{module}:{line} imports the package root')
            elif to != layer and RANK[to] >= RANK[layer]:
                wrong.append(f'{module}:{line} ({layer or "root"}) imports '
                             f'{target} ({to or "root"}), a layer not '
                             f'below it')
    assert not wrong, '\n'.join(wrong)


def test_every_layer_is_ranked():
    layers = {_layer(m) for m, _, _ in _modules()}
    assert layers == set(RANK)


# Imports every module of LAYER with the package root replaced by a bare
# package (its __init__ registers everything) and the layers above blocked.
_IMPORT_LAYER = '''
import importlib, json, os, pkgutil, sys, types
root, package, layer, above = sys.argv[1:5]
above = json.loads(above)
bare = types.ModuleType(package)
bare.__path__ = [os.path.join(root, package)]
sys.modules[package] = bare


class Block:
    def find_spec(self, name, path=None, target=None):
        if any(name == f'{package}.{a}' or name.startswith(
                f'{package}.{a}.') for a in above):
            raise ImportError(f'{name} is above {layer}')


sys.meta_path.insert(0, Block())
top = f'{package}.{layer}'
names = [top]
path = os.path.join(root, package, layer)
if os.path.isdir(path):
    names += [f'{top}.{n}' for n in sorted(
        m.name for m in pkgutil.walk_packages([path]))]
for name in names:
    importlib.import_module(name)
print(json.dumps(sorted(n for n in sys.modules if n.startswith(package))))
'''


@pytest.mark.parametrize('layer', sorted(layer for layer in RANK if layer))
def test_each_layer_imports_with_the_layers_above_blocked(layer):
    above = [
        other for other in RANK
        if other and other != layer and RANK[other] >= RANK[layer]
    ]
    code, log = run_cli([
        sys.executable, '-c', _IMPORT_LAYER, ROOT, PACKAGE, layer,
        json.dumps(above)
    ],
                        timeout=300)
    assert code == 0, log[-3000:]
    loaded = json.loads(log.strip().splitlines()[-1])
    assert f'{PACKAGE}.{layer}' in loaded
    assert not [m for m in loaded if _layer(m) in above]
