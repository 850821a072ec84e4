"""Data loaders. Every loader works offline and says what it looked for and how to get it."""
from .images import (FASHION_CLASSES, ImageDataset, load_digits_fallback, load_fashion_mnist,
                     load_photos, read_idx)
from .loaders import ViewLoader
from .weibo import WeiboSplit, load_weibo

__all__ = ["FASHION_CLASSES", "ImageDataset", "ViewLoader", "WeiboSplit", "load_digits_fallback",
           "load_fashion_mnist", "load_photos", "load_weibo", "read_idx"]
