"""cl-teach: learn contrastive representation learning by doing.

Submodules are imported explicitly (``from cl_teach import losses``); nothing runs at import.
"""
from .config import get_device, notebook_seed, seed_everything, setup, threads

__version__ = "0.1.0"
__all__ = ["get_device", "notebook_seed", "seed_everything", "setup", "threads", "__version__"]
