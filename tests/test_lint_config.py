"""`make lint` and the pre-commit hooks run the same linters at the same
versions (requirements/lint.txt), and every tracked Python file is linted."""
import os.path as osp
import re

import yaml

from .conftest import ROOT


def _pinned():
    with open(osp.join(ROOT, 'requirements', 'lint.txt')) as f:
        return dict(
            line.split('==') for line in f.read().splitlines()
            if line and not line.startswith('#'))


def test_the_hooks_pin_what_make_lint_installs():
    with open(osp.join(ROOT, '.pre-commit-config.yaml')) as f:
        config = yaml.safe_load(f)
    hooks = {h['id']: h for repo in config['repos'] for h in repo['hooks']}
    pinned = _pinned()
    assert set(hooks) == set(pinned) == {'flake8', 'isort', 'yapf'}
    for name, version in pinned.items():
        assert hooks[name]['additional_dependencies'] == [
            f'{name}=={version}'
        ], name


def test_make_lint_covers_every_tracked_python_file():
    with open(osp.join(ROOT, 'Makefile')) as f:
        makefile = f.read()
    assert "PY_FILES = $(shell git ls-files '*.py')" in makefile
    lint = re.search(r'^lint:.*?(?=^\S)', makefile, re.M | re.S).group(0)
    for tool in ('flake8', 'isort --check-only --diff', 'yapf --diff'):
        assert f'{tool} $(PY_FILES)' in lint, tool
