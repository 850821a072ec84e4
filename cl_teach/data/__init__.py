"""Data loaders. Every loader works offline and says what it looked for and how to get it."""
from .images import (FASHION_CLASSES, ImageDataset, load_digits_fallback, load_fashion_mnist,
                     load_photos, read_idx)
from .loaders import ViewLoader
from .text import Vocab, tokenize
from .text_image import ImageTextSet, load_clipart, load_emoji, make_shapes
from .weibo import WeiboSplit, load_weibo

__all__ = ["FASHION_CLASSES", "ImageDataset", "ViewLoader", "WeiboSplit", "load_digits_fallback",
           "load_fashion_mnist", "load_photos", "load_weibo", "read_idx",
           "ImageTextSet", "Vocab", "load_clipart", "load_emoji", "make_shapes", "tokenize"]
