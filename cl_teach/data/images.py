"""Image data sets: Fashion-MNIST (real, offline), scikit-learn digits (fallback), photos."""
from __future__ import annotations

import gzip
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import data_dir
from ._paths import search_path

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
#: Where Debian's ``dataset-fashion-mnist`` puts the IDX files (``dpkg -L dataset-fashion-mnist``).
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
HOW_TO_GET = ("To get the real Fashion-MNIST offline: `sudo apt-get install dataset-fashion-mnist` "
              "(Debian/Ubuntu), or set CL_TEACH_FASHION_MNIST to a folder holding the four "
              "*-idx*-ubyte.gz files, or call load_fashion_mnist(download=True) when online.")


@dataclass
class ImageDataset:
    """Images as float tensors in [0, 1] with integer labels.

    Attributes:
        x: (N, C, H, W) float32.
        y: (N,) int64.
        classes: class names.
        name: "fashion_mnist" or "digits".
        is_fallback: True when the real set was not found.
        source: where it was read from.
    """
    x: torch.Tensor
    y: torch.Tensor
    classes: list[str]
    name: str
    source: str
    is_fallback: bool = False
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.x.shape[0]

    def __repr__(self) -> str:
        tag = " (FALLBACK)" if self.is_fallback else ""
        return (f"ImageDataset({self.name}{tag}: x {tuple(self.x.shape)}, "
                f"{len(self.classes)} classes, from {self.source})")

    def subset(self, n: int, seed: int = 0) -> ImageDataset:
        """A random subset of ``n`` items (fixed by ``seed``), stratification not needed here.

        On the digits fallback (``is_fallback``), an ``n`` above its size is capped at the size,
        with a warning (as :func:`fashion_mnist_subsets` does), so that a notebook written for
        Fashion-MNIST's 60,000 images still runs; on the real set it is an error.
        """
        if self.is_fallback and n > len(self):
            warnings.warn(f"subset(n={n}) of the {self.name} FALLBACK, which has {len(self)} images: "
                          f"all {len(self)} are used", stacklevel=2)
            n = len(self)
        if not 0 < n <= len(self):
            raise ValueError(f"n must be in 1..{len(self)}, got {n}")
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return ImageDataset(self.x[idx], self.y[idx], self.classes, self.name, self.source,
                            self.is_fallback, list(self.notes))


def read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file (LeCun's MNIST format) into a NumPy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: header says {shape}, found {arr.size} bytes")
    return arr.reshape(shape)


def fashion_mnist_dirs(root: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for the IDX files, in order."""
    return search_path(root, "CL_TEACH_FASHION_MNIST",
                       [DEBIAN_FASHION_DIR, data_dir() / "fashion_mnist",
                        # the last: torchvision's download layout
                        data_dir() / "FashionMNIST" / "raw"])


def _find(dirs: Sequence[Path], split: str) -> Path | None:
    for d in dirs:
        if all((d / f).exists() or (d / f[:-3]).exists() for f in _FILES[split]):
            return d
    return None


def _read_split(d: Path, split: str):
    paths = [(d / f) if (d / f).exists() else (d / f[:-3]) for f in _FILES[split]]
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    x = torch.from_numpy(images.copy()).float().div_(255).unsqueeze(1)   # (N, 1, 28, 28)
    return x, torch.from_numpy(labels.astype(np.int64))


def load_digits_fallback(split: str = "train") -> ImageDataset:
    """scikit-learn's bundled 8x8 digits, upsampled to 28x28, split 75/25 with a fixed seed."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.from_numpy(d.images).float().div_(16).unsqueeze(1)           # (1797, 1, 8, 8)
    x = torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    y = torch.from_numpy(d.target.astype(np.int64))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    cut = int(0.75 * len(y))
    idx = perm[:cut] if split == "train" else perm[cut:]
    return ImageDataset(x[idx].contiguous(), y[idx], [str(i) for i in range(10)], "digits",
                        "sklearn.datasets.load_digits", is_fallback=True)


def load_fashion_mnist(split: str = "train", root: str | os.PathLike | None = None,
                       download: bool = False, fallback: bool = True) -> ImageDataset:
    """Fashion-MNIST (Xiao et al., 2017), read offline from its IDX files.

    Looks in ``root``, ``$CL_TEACH_FASHION_MNIST``, Debian's ``/usr/share/datasets/fashion-mnist``
    and the cache ``data/cache``. When absent and ``download=True``, torchvision downloads it into
    the cache. When still absent and ``fallback=True``, returns scikit-learn's digits and says so
    loudly (a warning, and ``is_fallback=True``; in a notebook, the claims of the cells that follow
    are then reported rather than asserted: :mod:`cl_teach.fallback`); with ``fallback=False``
    raises FileNotFoundError.

    Args:
        split: "train" (60,000 images) or "test" (10,000).
        root: a folder to look in first (default: only the places above).
        download: let torchvision download the files into the cache when they are absent.
        fallback: return scikit-learn's digits (with a warning) when the files are absent.

    Returns:
        An :class:`ImageDataset` with x of shape (N, 1, 28, 28) in [0, 1].
    """
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    dirs = fashion_mnist_dirs(root)
    found = _find(dirs, split)
    if found is None and download:
        import torchvision
        torchvision.datasets.FashionMNIST(str(data_dir()), train=(split == "train"), download=True)
        found = _find(dirs, split)
    if found is not None:
        x, y = _read_split(found, split)
        return ImageDataset(x, y, list(FASHION_CLASSES), "fashion_mnist", str(found))
    looked = ", ".join(str(d) for d in dirs)
    msg = f"Fashion-MNIST {split} files not found (looked in: {looked}). {HOW_TO_GET}"
    if not fallback:
        raise FileNotFoundError(msg)
    warnings.warn(msg + " FALLING BACK to scikit-learn's 8x8 digits (1,797 images): numbers "
                  "in the notebooks will differ from the ones printed in the course.", stacklevel=2)
    from ..fallback import report_claims
    report_claims("scikit-learn's digits instead of Fashion-MNIST")   # in a notebook: cl_teach.fallback
    ds = load_digits_fallback(split)
    ds.notes.append(msg)
    return ds


#: Real photographs bundled with scikit-image and scikit-learn (no download needed).
PHOTO_NAMES = ("astronaut", "coffee", "chelsea", "rocket", "china", "flower")


def load_photos(size: int = 96, names: Sequence[str] = PHOTO_NAMES) -> tuple[torch.Tensor, list[str]]:
    """Real RGB photos, centre-cropped to squares and resized.

    From scikit-image (``astronaut``, ``coffee``, ``chelsea``, ``rocket``) and scikit-learn
    (``china``, ``flower``).

    Returns:
        ``(x, names)`` with x of shape (P, 3, size, size), float in [0, 1].
    """
    import torch.nn.functional as F

    from .._validate import check_positive
    check_positive("size", size, integer=True)
    out = []
    for name in names:
        if name in ("china", "flower"):
            from sklearn.datasets import load_sample_image
            img = load_sample_image(f"{name}.jpg")
        else:
            import skimage.data
            if not hasattr(skimage.data, name):
                raise ValueError(f"names must be among {PHOTO_NAMES}, got {name!r}")
            img = getattr(skimage.data, name)()
        t = torch.from_numpy(np.array(img[..., :3])).permute(2, 0, 1).float() / 255
        h, w = t.shape[1:]
        s = min(h, w)
        t = t[:, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        out.append(F.interpolate(t[None], size=(size, size), mode="bilinear", antialias=True,
                                 align_corners=False)[0])
    return torch.stack(out).clamp_(0, 1), list(names)


def fashion_mnist_subsets(n_train: int, n_test: int, seed: int = 0) -> tuple:
    """``(train, test)``: random subsets of Fashion-MNIST's two splits, the course's usual data.

    The training subset is drawn with ``seed``, the test subset with ``seed + 1``; with the
    scikit-learn digits fallback (see :func:`load_fashion_mnist`) each is capped at its split's
    size.

    Args:
        n_train: training images (the kNN memory bank and the probe's training set).
        n_test: held-out test images (the queries).
        seed: the notebook's seed.

    Example:
        >>> train, test = fashion_mnist_subsets(100, 50, seed=0)        # doctest: +SKIP
        >>> len(train), len(test)                                       # doctest: +SKIP
        (100, 50)
    """
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    return (train.subset(min(n_train, len(train)), seed=seed),
            test.subset(min(n_test, len(test)), seed=seed + 1))
