"""Every tool follows one command-line convention: config (and checkpoint)
first and positional, `--out` the one output flag, `--cfg-options` wherever
a config is read, help text on every argument."""
import argparse
import glob
import importlib.util
import os
import os.path as osp

import pytest

from .conftest import ROOT


def _is_tool(path):
    """A script (it runs main() as __main__), not a module the tools share
    (those live in the package: mmseg_ssanet.benchmark)."""
    with open(path) as f:
        return "if __name__ == '__main__':" in f.read()


TOOLS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'tools', '*', '*.py')) +
    glob.glob(osp.join(ROOT, 'projects', '*', 'tools', '*.py')) if _is_tool(p))


class _Parsed(Exception):
    pass


def parser_of(path, monkeypatch):
    """The ArgumentParser a tool's main() builds, caught at parse_args."""
    spec = importlib.util.spec_from_file_location(
        'tool_' + osp.splitext(osp.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    caught = []

    def catch(self, *args, **kwargs):
        caught.append(self)
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', catch)
    environ = dict(os.environ)  # a tool may set its own (TRITON_INTERPRET)
    try:
        spec.loader.exec_module(module)
        with pytest.raises(_Parsed):
            module.main([])
    finally:
        os.environ.clear()
        os.environ.update(environ)
    return caught[0]


def test_the_tools_are_grouped_as_mmseg_groups_its_own():
    groups = {
        osp.basename(osp.dirname(p))
        for p in TOOLS if p.startswith(osp.join(ROOT, 'tools'))
    }
    assert groups == {'analysis_tools', 'deployment', 'misc', 'visualization'}
    assert not glob.glob(osp.join(ROOT, 'tools', '*.py'))


@pytest.mark.parametrize('path', TOOLS, ids=lambda p: osp.relpath(p, ROOT))
def test_tool_follows_the_convention(path, monkeypatch):
    parser = parser_of(path, monkeypatch)
    actions = [
        a for a in parser._actions if not isinstance(a, argparse._HelpAction)
    ]
    for action in actions:
        if action.help == argparse.SUPPRESS:
            continue  # internal (benchmark_snl's worker processes)
        assert action.help, f'{action.dest} has no help text'
    flags = {f for a in actions for f in a.option_strings}
    assert not flags & {'--out-dir', '--output-dir', '--output', '-o'}
    positionals = [a.dest for a in actions if not a.option_strings]
    if 'config' in positionals:
        assert positionals[0] == 'config'
        assert '--cfg-options' in flags
    if 'checkpoint' in positionals:
        assert positionals[1] == 'checkpoint'


def test_cfg_options_strings_become_a_dict():
    from mmseg_ssanet.utils.argument_types import cfg_options_dict
    assert cfg_options_dict([
        'model.decode_head.snl_dilation=2',
        'optim_wrapper.paramwise_cfg.custom_keys.offset.lr_mult=0.1'
    ]) == {
        'model.decode_head.snl_dilation': 2,
        'optim_wrapper.paramwise_cfg.custom_keys.offset.lr_mult': 0.1
    }
