"""Structural pruning: channel scores, torch-pruning, budgets, recovery.

The package itself is callable: `fa_compress.prune(model, example, keep=0.6)` is
`fa_compress.api.prune` (the top-level API), while `fa_compress.prune.pruner` and the other
modules stay importable as usual.
"""

import sys as _sys
import types as _types


class _CallablePackage(_types.ModuleType):
    """A package whose call is the public `prune` function (a name shared with the subpackage)."""

    def __call__(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN204 - forwards to api.prune
        from ..api import prune

        return prune(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallablePackage
