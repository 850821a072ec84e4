"""The data layer: real Fashion-MNIST from its IDX files, the announced fallback, the Weibo
corpus with sha256 checks and clear errors, and the bundled photos."""
import gzip
import hashlib
import shutil

import numpy as np
import pytest
import torch

from cl_teach.data import images, load_fashion_mnist, load_photos, load_weibo, read_idx
from cl_teach.data import weibo as weibo_mod

DEBIAN_SHA256 = {
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
}
HAVE_FASHION = all((images.DEBIAN_FASHION_DIR / f).exists() for f in DEBIAN_SHA256)
needs_fashion = pytest.mark.skipif(not HAVE_FASHION, reason="apt-get install dataset-fashion-mnist")


def _write_idx(path, arr):
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_read_idx_roundtrip(tmp_path):
    arr = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 256
    _write_idx(tmp_path / "a.gz", arr)
    assert (read_idx(tmp_path / "a.gz") == arr).all()


def test_read_idx_rejects_bad_magic_and_truncation(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short")


@needs_fashion
def test_debian_files_are_the_published_ones():
    for name, want in DEBIAN_SHA256.items():
        assert hashlib.sha256((images.DEBIAN_FASHION_DIR / name).read_bytes()).hexdigest() == want


@needs_fashion
def test_fashion_mnist_real():
    tr, te = load_fashion_mnist("train"), load_fashion_mnist("test")
    assert tr.x.shape == (60000, 1, 28, 28) and te.x.shape == (10000, 1, 28, 28)
    assert tr.x.dtype == torch.float32 and tr.x.min() >= 0 and tr.x.max() <= 1
    assert torch.bincount(tr.y).tolist() == [6000] * 10 and not tr.is_fallback
    assert tr.classes[9] == "Ankle boot"


def test_fashion_mnist_from_root_and_env(tmp_path, monkeypatch):
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.full((3, 28, 28), 255))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([1, 2, 3]))
    ds = load_fashion_mnist("test", root=tmp_path)
    assert ds.x.shape == (3, 1, 28, 28) and ds.y.tolist() == [1, 2, 3] and ds.x.max() == 1.0
    monkeypatch.setenv("CL_TEACH_FASHION_MNIST", str(tmp_path))
    monkeypatch.setattr(images, "DEBIAN_FASHION_DIR", tmp_path / "nowhere")
    assert load_fashion_mnist("test").source == str(tmp_path)


def test_fallback_is_announced(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "DEBIAN_FASHION_DIR", tmp_path / "nowhere")
    monkeypatch.delenv("CL_TEACH_FASHION_MNIST", raising=False)
    monkeypatch.setenv("CL_TEACH_DATA", str(tmp_path / "cache"))
    with pytest.warns(UserWarning, match="apt-get install dataset-fashion-mnist.*FALLING BACK"):
        ds = load_fashion_mnist("train")
    assert ds.is_fallback and ds.name == "digits" and ds.x.shape[1:] == (1, 28, 28)
    with pytest.raises(FileNotFoundError, match="looked in"):
        load_fashion_mnist("train", fallback=False)
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist("validation")


def test_photos_are_real_rgb():
    x, names = load_photos(size=32)
    assert x.shape == (6, 3, 32, 32) and names[0] == "astronaut"
    assert x.std() > 0.1                                   # real images, not blank
    with pytest.raises(ValueError, match="names"):
        load_photos(names=["not_a_photo"])


HAVE_WEIBO = any((d / "valid_post.txt").exists() for d in weibo_mod.weibo_dirs())
needs_weibo = pytest.mark.skipif(not HAVE_WEIBO, reason="Weibo corpus not beside the repository")


@needs_weibo
def test_weibo_real_corpus():
    valid, test = load_weibo("valid"), load_weibo("test")
    assert len(valid) == 4013 and len(test) == 4014
    assert len({t for ts in valid.tags for t in ts}) == 1757
    assert all(len(ts) >= 1 for ts in test.tags)


def test_weibo_missing_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr(weibo_mod, "weibo_dirs", lambda root=None: [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(FileNotFoundError, match=r"looked for valid_post.txt.*a.*b.*CL_TEACH_WEIBO"):
        load_weibo("valid")
    with pytest.raises(ValueError, match="split must be"):
        load_weibo("train")


@needs_weibo
def test_weibo_corrupt_file_is_refused(tmp_path):
    src = weibo_mod.find_weibo(split="valid")
    for kind in ("post", "tag", "conv"):
        shutil.copy(src / f"valid_{kind}.txt", tmp_path / f"valid_{kind}.txt")
    with open(tmp_path / "valid_tag.txt", "a", encoding="utf-8") as f:
        f.write("extra\n")
    with pytest.raises(ValueError, match="valid_tag.txt is corrupt.*sha256"):
        load_weibo("valid", root=tmp_path)
    with pytest.raises(ValueError, match="misaligned"):
        load_weibo("valid", root=tmp_path, verify=False)
