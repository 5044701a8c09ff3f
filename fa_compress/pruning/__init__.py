"""Structural pruning: channel scores, torch-pruning, budgets, the fade, recovery, and the chain that
composes them (`chain.py`). The one-call API on a model is `fa_compress.prune` (fa_compress/api.py)."""
