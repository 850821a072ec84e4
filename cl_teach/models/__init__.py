"""Encoders and heads (x -> h -> z), and the helpers that embed a data set with them.

Flat re-exports, one concept per file: :mod:`~cl_teach.models.vision` (image encoders),
:mod:`~cl_teach.models.vit` (TinyViT, MoCo v3's Vision Transformer),
:mod:`~cl_teach.models.heads` (projectors, predictors, DINO's head, towers over frozen features),
:mod:`~cl_teach.models.text` (text towers), :mod:`~cl_teach.models.pretrained` (frozen towers
from PyPI wheels), :mod:`~cl_teach.models.embed` (eval mode and embeddings).
"""
from .embed import device_of, embed, embed_bags, evaluating
from .heads import DINOHead, FeatureTower, mlp, projector
from .pretrained import FrozenEfficientNet, FrozenUSE, available, embed_images, embed_texts
from .text import TextCNN, TextTower, TinyTransformer
from .vision import SmallCNN, count_parameters
from .vit import TinyViT

__all__ = ["DINOHead", "FeatureTower", "FrozenEfficientNet", "FrozenUSE", "SmallCNN", "TextCNN",
           "TextTower", "TinyTransformer", "TinyViT", "available", "count_parameters", "device_of", "embed",
           "embed_bags", "embed_images", "embed_texts", "evaluating", "mlp", "projector"]
