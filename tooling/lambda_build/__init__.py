"""Build tooling for item-prediction's Lambda layers and size gate.

``config`` reads the single source of truth (layers/layers.toml); ``lock`` resolves and splits
the joint lock; ``build`` installs, optimizes (``optimize``) and packages (``package``) layers
with caching; ``verify`` and ``elfcheck`` prove they work on the target runtime.
"""
