"""Methods: one file per method, one protocol (see base.py), all trained by ``cl_teach.train.fit``."""
from .base import Method, ema_update
from .simclr import SimCLR
from .simsiam import SimSiam

__all__ = ["Method", "SimCLR", "SimSiam", "ema_update"]
