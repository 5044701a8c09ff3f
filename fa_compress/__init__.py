"""facompress: attention-gated transfer learning, gate-ranked pruning and deployment of CNNs.

Importing this package is cheap: torch and friends load only when a submodule is used.
"""

__version__ = "0.1.0"
