"""Losses as pure functions, one family per file, re-exported flat (as lightly does)."""
from .align_uniform import alignment, uniformity
from .byol import negative_cosine
from .info_nce import info_nce, info_nce_logits, nt_xent

__all__ = ["alignment", "info_nce", "info_nce_logits", "negative_cosine", "nt_xent", "uniformity"]
