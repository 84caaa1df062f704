"""Reference benchmark suite for contrastive representation learning."""

__version__ = "0.1.0"
