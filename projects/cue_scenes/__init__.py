"""The cue-scene study: does the sparse block learn where to look?

Scenes whose labels need a distant, local cue (``paired_cues``), measures
of the attention a trained block puts on that cue (``cue_attention``), and
the tools that train the paper's Table 1 rows on them (``tools/``). See
this folder's README.md.
"""
