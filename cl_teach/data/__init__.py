"""Data loaders. Every loader works offline and says what it looked for and how to get it."""
from .clipart import load_clipart
from .emoji import load_emoji
from .image_text import ImageTextSet
from .images import (
                     FASHION_CLASSES,
                     ImageDataset,
                     fashion_mnist_subsets,
                     load_digits_fallback,
                     load_fashion_mnist,
                     load_photos,
                     read_idx,
)
from .loaders import HashtagPairLoader, TensorLoader, ViewLoader
from .ngrams import CharNgrams, pack
from .shapes import make_shapes
from .text import Vocab, tokenize
from .weibo import WeiboSplit, generated_weibo, load_train_tags, load_weibo, weibo_posts

__all__ = ["FASHION_CLASSES", "CharNgrams", "HashtagPairLoader", "ImageDataset", "TensorLoader",
           "ViewLoader", "WeiboSplit", "fashion_mnist_subsets", "generated_weibo", "load_digits_fallback",
           "pack", "weibo_posts",
           "load_fashion_mnist", "load_photos", "load_train_tags", "load_weibo", "read_idx",
           "ImageTextSet", "Vocab", "load_clipart", "load_emoji", "make_shapes", "tokenize"]
