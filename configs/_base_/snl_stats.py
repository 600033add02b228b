# The SNL blocks' training statistics (offset lengths, attention entropy,
# points outside the map), logged every 50 iterations to the log and every
# visualisation backend; see mmseg_ssanet/engine/snl_stats_hook.py.
# Change with --cfg-options custom_hooks.0.interval=N; off: custom_hooks=[]
custom_hooks = [dict(type='SNLStatsHook', interval=50)]
