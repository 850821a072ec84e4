"""Methods: one file per method, one protocol (see base.py), all trained by ``cl_teach.train.fit``."""
from .barlow_twins import BarlowTwins
from .base import Method, cosine_momentum, ema_update
from .byol import BYOL
from .clip import CLIP
from .deepcluster import DeepCluster
from .dino import DINO
from .dual_tower import DualTower
from .hashtag_classifier import SoftmaxClassifier
from .moco import MoCo
from .moco_v3 import MoCoV3
from .self_guided import SelfGuided
from .simclr import SimCLR
from .simcse import SimCSE
from .simsiam import SimSiam
from .swav import SwAV
from .wenlan import WenLan

__all__ = ["BYOL", "BarlowTwins", "DINO", "DeepCluster", "Method", "MoCo", "MoCoV3", "SimCLR", "SimSiam",
           "SwAV", "ema_update", "CLIP", "DualTower", "SimCSE", "SelfGuided", "WenLan", "cosine_momentum",
           "SoftmaxClassifier"]
