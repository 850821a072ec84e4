"""Thin ipywidgets bindings over ``cl_teach.plotting`` and ``cl_teach.losses``, one explorer per file.

Each explorer is a pure ``*_stats`` function (tested without a browser), a ``plot_*`` function
and a widget that redraws a figure and a one-line readout when a control moves (tested in a
real browser); :mod:`._explorer` holds the redraw loop they share.

- :func:`temperature_explorer` (notebook 01): InfoNCE's temperature and the negatives.
- :func:`similarity_explorer` (notebook 02): the length power from the dot product to the cosine.
- :func:`collapse_explorer` (notebook 03): the directions an embedding keeps against the monitors.
- :func:`circle_explorer` (notebook 04): alignment and uniformity of points on the circle.
- :func:`augmentation_explorer` (notebook 05): augmentation strength and the smallest crop.
- :func:`shortcut_explorer` (notebook 06): which augmentation closes which shortcut to the positive.
- :func:`moco_queue_explorer` (notebook 07): MoCo's momentum and queue size against key consistency.
- :func:`holdout_explorer` (notebook 13): how many test items a claim against the baseline needs.
- :func:`false_negative_explorer` (notebook 10): the batch size and the classes against false negatives.
- :func:`sinkhorn_explorer` (notebook 08): SwAV's Sinkhorn-Knopp epsilon and rounds.
- :func:`byol_explorer` (notebook 09): BYOL's target momentum, SimSiam's stop-gradient, the predictor.
- :func:`lambda_explorer` (notebook 11): Barlow Twins' lambda against the off-diagonal of C and z's rank.
- :func:`search_explorer` (notebook 18): Faiss's nprobe / ef_search against the recall of exact search.
- :func:`dino_teacher_explorer` (notebook 12): DINO's teacher temperature and centering.
- :func:`neighbour_explorer` (notebook 14): a post's k nearest posts and the share sharing a hashtag.
- :func:`logit_scale_explorer` (notebook 15): CLIP's logit scale.
- :func:`stale_key_explorer` (notebook 16): WenLan's queue size against the own stale keys it holds.
- :func:`hashtag_box` (notebook 17): a post's top-k hashtags.
- :func:`gather_explorer` (notebook 20): W processes, the gather's gradient and the loss, against one process.
- :func:`hubness_explorer` (notebook 19): CSLS's hub penalty against the k-occurrence.

ipywidgets, IPython and matplotlib are imported only when a widget or figure is built.
"""
from .augmentation import augmentation_explorer, augmentation_views
from .barlow import barlow_stats, barlow_sweep, lambda_explorer, plot_barlow_stats
from .byol import byol_explorer, byol_heads, byol_runs, byol_stats, plot_byol_stats
from .circle import circle_explorer, circle_stats, plot_circle_stats, uniform_circle_uniformity
from .collapse import collapse_explorer, collapse_stats, plot_collapse_stats
from .dino_teacher import dino_teacher_explorer, dino_teacher_stats, plot_dino_teacher_stats
from .false_negatives import false_negative_explorer, false_negative_stats, plot_false_negative_stats
from .gather import emulated_gradient, gather_explorer, gather_stats, plot_gather_stats
from .hashtags import hashtag_box
from .holdout import holdout_explorer, holdout_stats, plot_holdout_stats
from .hubness import hubness_explorer, hubness_stats, plot_hubness_stats
from .logit_scale import logit_scale_explorer, logit_scale_stats, plot_logit_scale_stats
from .moco import moco_queue_explorer, moco_queue_stats, plot_moco_queue_stats
from .neighbours import neighbour_explorer, neighbour_lists, neighbour_stats, plot_neighbour_stats
from .search import plot_search_stats, search_explorer, search_stats
from .shortcuts import plot_shortcut_stats, shortcut_explorer, shortcut_stats
from .similarity import LengthPowerKNN, plot_similarity_stats, similarity_explorer
from .sinkhorn import plot_sinkhorn_stats, sinkhorn_explorer, sinkhorn_stats
from .stale_keys import (
    plot_stale_key_stats,
    stale_key_explorer,
    stale_key_share_expected,
    stale_key_stats,
    stale_key_sweep,
)
from .temperature import (
    negatives_with_similarities,
    plot_temperature_stats,
    temperature_explorer,
    temperature_stats,
)

__all__ = ["LengthPowerKNN", "augmentation_explorer", "augmentation_views", "barlow_stats",
           "barlow_sweep", "byol_explorer", "byol_heads", "byol_runs", "byol_stats",
           "circle_explorer", "circle_stats", "collapse_explorer", "collapse_stats",
           "dino_teacher_explorer", "dino_teacher_stats", "emulated_gradient",
           "false_negative_explorer", "false_negative_stats", "gather_explorer", "gather_stats",
           "hashtag_box", "holdout_explorer", "holdout_stats", "hubness_explorer", "hubness_stats",
           "lambda_explorer", "logit_scale_explorer", "logit_scale_stats", "moco_queue_explorer",
           "moco_queue_stats", "negatives_with_similarities", "neighbour_explorer",
           "neighbour_lists", "neighbour_stats", "plot_barlow_stats", "plot_byol_stats",
           "plot_circle_stats", "plot_collapse_stats", "plot_dino_teacher_stats",
           "plot_false_negative_stats", "plot_gather_stats", "plot_holdout_stats",
           "plot_hubness_stats", "plot_logit_scale_stats", "plot_moco_queue_stats",
           "plot_neighbour_stats", "plot_search_stats", "plot_shortcut_stats",
           "plot_similarity_stats", "plot_sinkhorn_stats", "plot_stale_key_stats",
           "plot_temperature_stats", "search_explorer", "search_stats", "shortcut_explorer",
           "shortcut_stats", "similarity_explorer", "sinkhorn_explorer", "sinkhorn_stats",
           "stale_key_explorer", "stale_key_share_expected", "stale_key_stats", "stale_key_sweep",
           "temperature_explorer", "temperature_stats", "uniform_circle_uniformity"]
