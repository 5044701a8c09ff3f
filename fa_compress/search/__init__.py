"""What needs several stages at once: the latency-target search (prune + export + time) and the
keep-ratio sweep (prune + recover + export + bench). Pruning itself never imports these.

>>> from fa_compress.search.latency import LatencyTarget
>>> from fa_compress.search.sweep import sweep_run
"""
