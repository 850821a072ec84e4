"""The Weibo hashtag corpus (Wang et al., NAACL 2019), read from a path, never committed.

Files (aligned line by line): ``{split}_post.txt`` (word-segmented post), ``{split}_tag.txt``
(hashtags separated by ``;``), ``{split}_conv.txt`` (the reply thread), for split in valid/test,
plus ``train_tag.txt``. See ../shared/data/weibo_hashtags/README.md.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from ..config import REPO_ROOT, data_dir

SHA256 = {
    "test_conv.txt": "5d46976bde247fb1c5cd5fbf53ed3274aef183cfda8e3913406b639b116b83a5",
    "test_post.txt": "c33e139bc1a29a8a61784dfaef50638761ec0a9442db0e613e54f3f450e34c4f",
    "test_tag.txt": "f168807309fe472e90550573db5b8ff348d83bd16bcfa2813a8cb289c9bdab19",
    "train_tag.txt": "ceb73dcd7bc07f47ba7592e09f188334b9ac08668a9205cf22639bab13f7214d",
    "valid_conv.txt": "9b48e59cbb06db6611ecc25be5dc572690ae64cc8f45c15d9ee4c4c857534049",
    "valid_post.txt": "33a3a0fac1f889ced61cd75781444a7d3b86185cfaaa4a56cfbc6e7237c684d3",
    "valid_tag.txt": "0c0d316a657d65807d40acafac56002afe93df6a1ca492b4af0c1bb30ae17252",
}
HOW_TO_GET = ("The corpus is the folder data/Weibo/ of the public repository "
              "yuewang-cuhk/HashtagGeneration (NAACL 2019). Put its files in one folder and pass "
              "root=... or set CL_TEACH_WEIBO=/path/to/folder; in this course's set-up it lives "
              "in ../shared/data/weibo_hashtags beside the repository.")


@dataclass
class WeiboSplit:
    """One split. ``posts[i]`` (space-segmented text) has hashtags ``tags[i]`` (a list)."""
    split: str
    posts: List[str]
    tags: List[List[str]]
    convs: List[str]
    source: str

    def __len__(self) -> int:
        return len(self.posts)

    def __repr__(self) -> str:
        n_tags = len({t for ts in self.tags for t in ts})
        return f"WeiboSplit({self.split}: {len(self)} posts, {n_tags} unique tags, from {self.source})"


def weibo_dirs(root: Optional[str | os.PathLike] = None) -> List[Path]:
    """The folders searched, in order."""
    dirs = []
    if root is not None:
        dirs.append(Path(root))
    if os.environ.get("CL_TEACH_WEIBO"):
        dirs.append(Path(os.environ["CL_TEACH_WEIBO"]))
    dirs += [REPO_ROOT.parent / "shared" / "data" / "weibo_hashtags", data_dir() / "weibo_hashtags"]
    return dirs


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_lines(path: Path, verify: bool) -> List[str]:
    if verify:
        got = sha256_file(path)
        if got != SHA256[path.name]:
            raise ValueError(f"{path} is corrupt or a different version: sha256 {got}, expected "
                             f"{SHA256[path.name]}. {HOW_TO_GET}")
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def find_weibo(root: Optional[str | os.PathLike] = None, split: str = "valid") -> Path:
    """The first searched folder holding ``split``'s files; FileNotFoundError naming them all."""
    dirs = weibo_dirs(root)
    for d in dirs:
        if all((d / f"{split}_{kind}.txt").exists() for kind in ("post", "tag", "conv")):
            return d
    looked = ", ".join(str(d) for d in dirs)
    raise FileNotFoundError(f"Weibo corpus split {split!r} not found: looked for {split}_post.txt, "
                            f"{split}_tag.txt, {split}_conv.txt in {looked}. {HOW_TO_GET}")


def load_weibo(split: str = "valid", root: Optional[str | os.PathLike] = None,
               verify: bool = True) -> WeiboSplit:
    """Load one split of the Weibo hashtag corpus, checking every file's sha256.

    Args:
        split: "valid" (4,013 posts; the course trains on it) or "test" (4,014 posts).
        root: a folder with the files; else ``$CL_TEACH_WEIBO``, ``../shared/data/weibo_hashtags``
            and ``data/cache/weibo_hashtags`` are searched.
        verify: check sha256 against the published list.

    Raises:
        FileNotFoundError: naming every folder searched and how to get the corpus.
        ValueError: a file whose sha256 does not match, or misaligned files.
    """
    if split not in ("valid", "test"):
        raise ValueError(f"split must be 'valid' or 'test' (the train posts are not "
                         f"distributed), got {split!r}")
    d = find_weibo(root, split)
    posts, tag_lines, convs = (_read_lines(d / f"{split}_{k}.txt", verify) for k in ("post", "tag", "conv"))
    if not len(posts) == len(tag_lines) == len(convs):
        raise ValueError(f"{d}: {split} files are misaligned ({len(posts)} posts, "
                         f"{len(tag_lines)} tag lines, {len(convs)} conversations)")
    tags = [[t.strip() for t in line.split(";") if t.strip()] for line in tag_lines]
    return WeiboSplit(split, posts, tags, convs, str(d))
