"""Losses as pure functions, one family per file, re-exported flat (as lightly does)."""
from .align_uniform import alignment, uniformity
from .barlow_twins import barlow_twins_loss, cross_correlation
from .clip import clip_logits, clip_loss
from .debiased import debiased_info_nce
from .dino import dino_loss
from .info_nce import index_nce, info_nce, info_nce_logits, masked_info_nce, nt_xent, queue_nce
from .koleo import koleo_loss
from .metric import batch_triplet_loss, contrastive_pair_loss, n_pair_loss, supcon_loss, triplet_loss
from .negative_cosine import negative_cosine
from .self_guided import self_guided_loss, weight_distance
from .simcse import simcse_loss
from .swav import sinkhorn, swav_loss

__all__ = ["alignment", "barlow_twins_loss", "cross_correlation", "dino_loss", "sinkhorn", "swav_loss",
           "index_nce", "info_nce", "info_nce_logits", "masked_info_nce", "negative_cosine", "nt_xent",
           "queue_nce",
           "uniformity", "clip_logits", "clip_loss", "simcse_loss",
           "contrastive_pair_loss", "triplet_loss", "batch_triplet_loss", "n_pair_loss", "supcon_loss",
           "debiased_info_nce", "koleo_loss", "self_guided_loss", "weight_distance"]
