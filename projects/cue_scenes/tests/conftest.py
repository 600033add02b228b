"""The study's tests run with the repository's suite (``make test``) or
alone (``pytest projects/cue_scenes/tests``): the repository root goes on
``sys.path`` so ``projects.cue_scenes`` and the suite's helpers import."""
import os.path as osp
import sys

ROOT = osp.abspath(osp.join(__file__, *['..'] * 4))
if sys.path[0] != ROOT:
    sys.path.insert(0, ROOT)
