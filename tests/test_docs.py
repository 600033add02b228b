"""The docs stay true: every command they show names a tool, flag, make
target and config that exist, writes nowhere into tracked files, and every
relative link and #anchor resolves.

The shell commands are read from the fenced ``bash`` blocks of the README,
docs/, configs/README.md and the projects' READMEs (continued lines
joined). Each Python tool's flags are checked against its own ``--help``;
placeholders (CONFIG, CKPT, ...) are fine, their files need not exist.
"""
import functools
import glob
import importlib.util
import os
import os.path as osp
import re
import shlex
import subprocess
import sys

import pytest

from .conftest import ROOT

DOCS = sorted([
    'README.md', 'configs/README.md',
    *(osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'docs', '*.md'))),
    *(osp.relpath(p, ROOT)
      for p in glob.glob(osp.join(ROOT, 'projects', '*', 'README.md')))
])
# flags that name where a command writes
OUTPUT_FLAGS = ('--out', '--work-dir', '--show-dir', '--screenshot',
                '--preview', '--save-path')


def _read(doc):
    with open(osp.join(ROOT, doc), encoding='utf-8') as f:
        return f.read()


def shell_commands(doc):
    """(line number, command) of each command in the bash blocks of doc."""
    commands, block, start = [], None, 0
    for number, line in enumerate(_read(doc).splitlines(), 1):
        if block is None:
            if re.match(r'^\s*```(bash|sh|shell)\s*$', line):
                block = []
            continue
        if line.strip().startswith('```'):
            text = '\n'.join(block).replace('\\\n', ' ')
            for offset, cmd in enumerate(text.splitlines()):
                cmd = cmd.split(' #')[0].strip()
                if cmd and not cmd.startswith('#'):
                    commands.append((start + offset, cmd))
            block = None
            continue
        if not block:
            start = number
        block.append(line)
    return commands


ALL = [(doc, number, cmd) for doc in DOCS
       for number, cmd in shell_commands(doc)]


def _tracked():
    """The tracked files and folders; skips the test where the source tree
    is not a git checkout (an sdist, ``git archive``): only git knows."""
    try:
        proc = subprocess.run(['git', 'ls-files'],
                              cwd=ROOT,
                              text=True,
                              capture_output=True)
    except FileNotFoundError:
        pytest.skip('needs git to list the tracked files; git is not '
                    'installed')
    if proc.returncode != 0:
        pytest.skip(f'needs a git checkout to list the tracked files; {ROOT} '
                    f'is not one ({proc.stderr.strip()[:200]})')
    out = proc.stdout.split()
    dirs = {osp.dirname(p) for p in out}
    dirs |= {osp.dirname(d) for d in list(dirs)}
    return set(out), {d for d in dirs if d}


@functools.lru_cache(None)
def tool_help(path):
    proc = subprocess.run([sys.executable, path, '--help'],
                          cwd=ROOT,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, f'{path} --help: {proc.stderr[-2000:]}'
    return proc.stdout


def make_targets():
    text = _read('Makefile')
    return set(re.findall(r'^([A-Za-z][\w-]*):', text, re.M))


def test_the_docs_show_commands():
    # the extraction works: the README's quick start and the device check
    found = {cmd for _, _, cmd in ALL}
    assert 'make demo' in found and 'make test' in found
    assert any(
        cmd.startswith('python3 .dev_scripts/device_check.py')
        for cmd in found)
    assert len(ALL) > 40


@pytest.mark.parametrize(
    'doc, line, cmd', ALL, ids=[f'{d}:{n}' for d, n, _ in ALL])
def test_command_names_what_exists(doc, line, cmd):
    words = shlex.split(cmd)
    where = f'{doc}:{line}: {cmd}'
    # skip environment assignments (SSANET_ISA=... make ...)
    while words and re.match(r'^[A-Z_]+=', words[0]):
        words = words[1:]
    if not words:
        return
    program = words[0]
    if program in ('python', 'python3') and len(words) > 1 and \
            words[1].endswith('.py') and not words[1].startswith('-'):
        tool = words[1]
        if not tool.startswith(('tools/', 'projects/', '.dev_scripts/')):
            return  # mmseg's own tools (a placeholder path to .mim)
        assert osp.isfile(osp.join(ROOT, tool)), f'no such tool: {where}'
        helptext = tool_help(tool)
        for flag in (w.split('=')[0] for w in words[2:] if w.startswith('--')):
            assert re.search(rf'(^|[\s\[,]){re.escape(flag)}\b', helptext), \
                f'{tool} has no flag {flag}: {where}'
    elif program == 'bash' and len(words) > 1:
        assert osp.isfile(osp.join(ROOT, words[1])), f'no such script: {where}'
    elif program == 'make':
        targets = [
            w for w in words[1:] if '=' not in w and not w.startswith('-')
        ]
        missing = set(targets) - make_targets()
        assert not missing, f'no make target {missing}: {where}'
    elif program == 'mim' and len(words) > 3 and words[1] in ('train', 'test'):
        config = words[3]
        if config.startswith('configs/'):
            assert osp.isfile(osp.join(ROOT, config)), \
                f'no such config: {where}'


@pytest.mark.parametrize(
    'doc, line, cmd', ALL, ids=[f'{d}:{n}' for d, n, _ in ALL])
def test_command_writes_nothing_tracked(doc, line, cmd):
    files, dirs = _tracked()
    words = shlex.split(cmd)
    for flag, value in zip(words, words[1:]):
        if flag in OUTPUT_FLAGS:
            path = osp.normpath(value)
            assert path not in files and path not in dirs and not any(
                path.startswith(d + '/') for d in dirs
                if d.startswith(('docs', 'projects', 'configs', 'tests',
                                 'mmseg_ssanet', 'tools'))), \
                f'{doc}:{line} writes into the repo\'s tracked files: {cmd}'


def _slug(heading):
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r'[`*_]|\[([^\]]*)\]\([^)]*\)', r'\1', heading.strip())
    text = re.sub(r'[^\w\- ]', '', text.lower())
    return text.replace(' ', '-')


@functools.lru_cache(None)
def anchors(doc):
    text = re.sub(r'```.*?```', '', _read(doc), flags=re.S)
    return {_slug(h) for h in re.findall(r'^#+\s+(.*)$', text, re.M)}


LINKS = [(doc, target) for doc in DOCS for target in re.findall(
    r'\]\(([^)\s]+)\)', re.sub(r'```.*?```', '', _read(doc), flags=re.S))
         if not re.match(r'^[a-z]+:', target)]


def test_links_are_found():
    assert len(LINKS) > 20


@pytest.mark.parametrize(
    'doc, target', LINKS, ids=[f'{d}->{t}' for d, t in LINKS])
def test_relative_link_and_anchor_resolve(doc, target):
    path, _, anchor = target.partition('#')
    resolved = osp.normpath(osp.join(osp.dirname(doc), path)) if path \
        else doc
    assert osp.exists(osp.join(ROOT, resolved)), \
        f'{doc}: link to {target} points nowhere'
    if anchor:
        assert resolved.endswith('.md'), f'{doc}: anchor into {resolved}'
        assert anchor in anchors(resolved), \
            f'{doc}: no heading #{anchor} in {resolved}'


def _layout_block():
    text = _read('README.md')
    section = text[text.index('## Layout'):]
    start = section.index('```\n') + 4
    return section[start:section.index('\n```', start)]


def test_readme_layout_matches_the_tree():
    block = _layout_block()
    entries, parent = [], ''
    for line in block.splitlines():
        name = line.split()[0] if line and not line.startswith(' ' * 6) \
            else None
        if name is None:
            continue
        if line.startswith('  '):
            entries.append(parent + name)
        else:
            parent = name if name.endswith('/') else ''
            entries.append(name)
    missing = [e for e in entries if not osp.exists(osp.join(ROOT, e))]
    assert not missing, missing
    # every part of the package, and every top-level folder, is shown
    package = {
        n + ('/' if osp.isdir(osp.join(ROOT, 'mmseg_ssanet', n)) else '')
        for n in os.listdir(osp.join(ROOT, 'mmseg_ssanet'))
        if not n.startswith(('_', '.')) and n not in (
            'version.py', 'explorer.html') and not n.endswith('.so')
    }
    shown = {
        e[len('mmseg_ssanet/'):]
        for e in entries
        if e.startswith('mmseg_ssanet/') and e != 'mmseg_ssanet/'
    }
    assert package <= shown, package - shown
    top = {n + '/' for n in ('configs', 'tools', 'tests', 'docs')}
    assert top <= set(entries)
    # the files a line names exist too
    for path in re.findall(r'\b([\w/]+\.(?:py|cpp))\b', block):
        assert any(osp.exists(osp.join(ROOT, d, path)) for d in (
            '', 'mmseg_ssanet', 'mmseg_ssanet/ops', 'mmseg_ssanet/utils',
            'mmseg_ssanet/apis', 'tools/analysis_tools', 'tests')) or \
            '*' in path, path


def test_the_canonical_install_is_what_ci_runs():
    # docs/installation.md's GPU install on torch 2.1, command for command,
    # is what .dev_scripts/compat_check.py runs for its canonical stack
    text = _read('docs/installation.md')
    section = text.split('## GPU install on the stack mmseg users have')[1]
    block = section.split('```bash')[1].split('```')[0]
    commands = [line.strip() for line in block.strip().splitlines()]
    assert len(commands) == 5 and commands[-1] == \
        'pip install --no-build-isolation -e .'
    spec = importlib.util.spec_from_file_location(
        'compat_check', osp.join(ROOT, '.dev_scripts', 'compat_check.py'))
    compat_check = importlib.util.module_from_spec(spec)
    sys.path.insert(0, osp.join(ROOT, '.dev_scripts'))  # its dev_common
    try:
        spec.loader.exec_module(compat_check)
    finally:
        sys.path.remove(osp.join(ROOT, '.dev_scripts'))
    assert list(compat_check.CANONICAL_INSTALL) == commands
