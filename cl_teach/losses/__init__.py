"""Losses as pure functions, one family per file, re-exported flat (as lightly does)."""
from .align_uniform import alignment, uniformity
from .barlow import barlow_twins_loss, cross_correlation
from .byol import negative_cosine
from .clip import clip_logits, clip_loss
from .dino import dino_loss
from .info_nce import info_nce, info_nce_logits, nt_xent
from .simcse import simcse_loss
from .swav import sinkhorn, swav_loss

__all__ = ["alignment", "barlow_twins_loss", "cross_correlation", "dino_loss", "sinkhorn", "swav_loss",
           "info_nce", "info_nce_logits", "negative_cosine", "nt_xent", "uniformity",
           "clip_logits", "clip_loss", "simcse_loss"]
