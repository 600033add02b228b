"""Model-zoo metadata: every config listed, every listed path there."""
import glob
import os.path as osp

import yaml

from .conftest import ROOT

METAFILE = osp.join(ROOT, 'configs', 'metafile.yaml')


def _configs():
    found = glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    return {
        osp.relpath(p, ROOT)
        for p in found if '_base_' not in p.split(osp.sep)
    }


def test_every_config_is_listed_and_every_listed_path_exists():
    meta = yaml.safe_load(open(METAFILE))
    listed = [m['Config'] for m in meta['Models']]
    assert len(listed) == len(set(listed))
    assert set(listed) == _configs()
    readme = meta['Collections'][0]['README']
    assert osp.isfile(osp.join(ROOT, readme))
    for model in meta['Models']:
        assert osp.isfile(osp.join(ROOT, model['Config']))
        assert model['In Collection'] == 'SSANet'
        assert model['Weights'] == ''  # no trained weights are published
        results = model['Results']
        assert results == [] or results['Source'].startswith('paper, Table')


def test_openmim_model_index_reads_it():
    # what `mim search` uses to read a metafile
    from modelindex.load_model_index import load
    index = load(METAFILE)
    assert len(index.models) == len(_configs())
    k81 = next(m for m in index.models
               if m.name == 'mobilenetv2_snl-k81_cityscapes')
    assert k81.results[0].metrics['mIoU'] == 74.51
