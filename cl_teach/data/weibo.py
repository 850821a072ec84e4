"""The Weibo hashtag corpus (Wang et al., NAACL 2019), read from a path, never committed.

Files (aligned line by line): ``{split}_post.txt`` (word-segmented post), ``{split}_tag.txt``
(hashtags separated by ``;``), ``{split}_conv.txt`` (the reply thread), for split in valid/test,
plus ``train_tag.txt``; :data:`HOW_TO_GET` says where they come from (the course's set-up keeps
them in ``../shared/data/weibo_hashtags``, with a README).

* :func:`load_weibo` -- one split, checked by sha256; ``fallback=True`` returns a GENERATED
  bilingual stand-in (:func:`generated_weibo`) when the corpus is absent, and says so loudly;
* :func:`load_train_tags` -- the hashtags of the 32,107 upstream training posts (their texts are
  not distributed): with ``valid``'s, the hashtags known before the test posts (notebook 17);
* :func:`weibo_posts` -- posts and hashtags of a split, short posts dropped (SimCSE, notebook 14);
  :func:`cl_teach.ranking.shared_label_relevance` gives each post the posts sharing a hashtag.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import REPO_ROOT, data_dir
from ._paths import search_path

__all__ = ["WeiboSplit", "load_weibo", "load_train_tags", "find_weibo", "weibo_dirs", "weibo_posts",
           "generated_weibo", "HOW_TO_GET"]

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
    posts: list[str]
    tags: list[list[str]]
    convs: list[str]
    source: str
    is_fallback: bool = False

    def __len__(self) -> int:
        return len(self.posts)

    def __repr__(self) -> str:
        n_tags = len({t for ts in self.tags for t in ts})
        return f"WeiboSplit({self.split}: {len(self)} posts, {n_tags} unique tags, from {self.source})"


def weibo_dirs(root: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched, in order."""
    return search_path(root, "CL_TEACH_WEIBO", [REPO_ROOT.parent / "shared" / "data" / "weibo_hashtags",
                                                data_dir() / "weibo_hashtags"])


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_lines(path: Path, verify: bool) -> list[str]:
    if verify:
        got = sha256_file(path)
        if got != SHA256[path.name]:
            raise ValueError(f"{path} is corrupt or a different version: sha256 {got}, expected "
                             f"{SHA256[path.name]}. {HOW_TO_GET}")
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def find_weibo(root: str | os.PathLike | None = None, split: str = "valid") -> Path:
    """The first searched folder holding ``split``'s files; FileNotFoundError naming them all."""
    dirs = weibo_dirs(root)
    for d in dirs:
        if all((d / f"{split}_{kind}.txt").exists() for kind in ("post", "tag", "conv")):
            return d
    looked = ", ".join(str(d) for d in dirs)
    raise FileNotFoundError(f"Weibo corpus split {split!r} not found: looked for {split}_post.txt, "
                            f"{split}_tag.txt, {split}_conv.txt in {looked}. {HOW_TO_GET}")


def load_weibo(split: str = "valid", root: str | os.PathLike | None = None,
               verify: bool = True, fallback: bool = False) -> WeiboSplit:
    """Load one split of the Weibo hashtag corpus, checking every file's sha256.

    Args:
        split: "valid" (4,013 posts; the course trains on it) or "test" (4,014 posts).
        root: a folder with the files; else ``$CL_TEACH_WEIBO``, ``../shared/data/weibo_hashtags``
            and ``data/cache/weibo_hashtags`` are searched.
        verify: check sha256 against the published list.
        fallback: when the corpus is absent, warn (naming every folder searched) and return the
            GENERATED stand-in :func:`generated_weibo` (``is_fallback=True``) instead of raising.
            Off by default: unlike Fashion-MNIST's fallback (real digits), the stand-in is not
            real data, so the caller opts in and says so.

    Raises:
        FileNotFoundError: naming every folder searched and how to get the corpus (unless
            ``fallback=True``).
        ValueError: a file whose sha256 does not match, or misaligned files.
    """
    if split not in ("valid", "test"):
        raise ValueError(f"split must be 'valid' or 'test' (the train posts are not "
                         f"distributed), got {split!r}")
    try:
        d = find_weibo(root, split)
    except FileNotFoundError as err:
        if not fallback:
            raise
        warnings.warn(f"{err} FALLING BACK to a GENERATED bilingual stand-in: its numbers say "
                      f"nothing about real microblogs.", stacklevel=2)
        from ..fallback import report_claims
        report_claims("a GENERATED Weibo stand-in instead of the corpus")
        return generated_weibo(split)
    posts, tag_lines, convs = (_read_lines(d / f"{split}_{k}.txt", verify) for k in ("post", "tag", "conv"))
    if not len(posts) == len(tag_lines) == len(convs):
        raise ValueError(f"{d}: {split} files are misaligned ({len(posts)} posts, "
                         f"{len(tag_lines)} tag lines, {len(convs)} conversations)")
    tags = _split_tags(tag_lines)
    return WeiboSplit(split, posts, tags, convs, str(d))


def _split_tags(lines: list[str]) -> list[list[str]]:
    return [[t.strip() for t in line.split(";") if t.strip()] for line in lines]


def load_train_tags(root: str | os.PathLike | None = None, verify: bool = True) -> list[list[str]]:
    """The hashtag lists of the upstream training split (``train_tag.txt``; no texts), sha256-checked.

    Raises:
        FileNotFoundError: naming every folder searched and how to get the corpus.
    """
    dirs = weibo_dirs(root)
    for d in dirs:
        if (d / "train_tag.txt").exists():
            return _split_tags(_read_lines(d / "train_tag.txt", verify))
    raise FileNotFoundError(f"train_tag.txt not found in {', '.join(str(d) for d in dirs)}. {HOW_TO_GET}")


def weibo_posts(split: str = "valid", min_tokens: int = 3, root=None):
    """Posts of the Weibo hashtag corpus with their hashtags, short posts dropped.

    Args:
        split: "valid" or "test" (see :func:`cl_teach.data.load_weibo`).
        min_tokens: drop posts with fewer words (one-word posts carry no meaning to match).
        root: folder of the corpus (else the searched defaults).

    Returns:
        ``(posts, tags)``: lists of space-segmented post strings and their hashtag lists.

    Raises:
        FileNotFoundError: from :func:`cl_teach.data.load_weibo`, naming where it looked.
    """
    ws = load_weibo(split, root=root)
    keep = [i for i, p in enumerate(ws.posts) if len(p.split()) >= min_tokens]
    return [ws.posts[i] for i in keep], [ws.tags[i] for i in keep]


# --- the GENERATED stand-in, used only when the real corpus is absent --------------------------
# Each topic has a hashtag (Chinese or English) and a few key words; a post mixes key words of its
# topic with common filler words, so hashtag retrieval is learnable but not string matching.

TOPICS = [
    ("我是歌手", "歌手 舞台 现场 唱 淘汰 评委"), ("中国好声音", "导师 学员 转身 声音 唱功"),
    ("春运", "火车票 回家 车站 排队 抢票 春节"), ("高考", "考生 分数 志愿 考场 作文 复习"),
    ("雾霾", "空气 口罩 污染 北京 pm2.5 天气"), ("世界杯", "足球 进球 球队 比赛 冠军 球迷"),
    ("NBA", "篮球 湖人 科比 投篮 季后赛 詹姆斯"), ("双十一", "淘宝 购物 快递 打折 剁手 红包"),
    ("爸爸去哪儿", "孩子 爸爸 节目 萌 旅行 任务"), ("奔跑吧兄弟", "撕名牌 跑男 游戏 兄弟 综艺"),
    ("iPhone", "apple phone screen battery ios 苹果"), ("travel", "trip beach hotel flight 旅行 风景"),
    ("food", "delicious dinner recipe 好吃 美食 餐厅"), ("movie", "film cinema actor trailer 电影 票房"),
    ("地震", "救援 灾区 祈福 伤亡 震级 平安"), ("马航", "航班 失联 乘客 搜救 飞机 祈祷"),
    ("减肥", "体重 运动 瘦 健身 饮食 跑步"), ("考研", "复试 院校 英语 政治 图书馆 上岸"),
    ("毕业季", "毕业 同学 青春 校园 离别 论文"), ("情人节", "玫瑰 礼物 表白 恋人 约会 巧克力"),
    ("justinbieber", "bieber concert fans music 比伯 演唱会"), ("football", "goal match league striker 球赛"),
    ("股市", "股票 涨停 大盘 基金 牛市 散户"), ("房价", "买房 房贷 楼市 首付 调控 租房"),
]
FILLER = ["今天", "真的", "我们", "大家", "觉得", "一个", "什么", "这个", "还是", "就是", "可以", "没有",
          "知道", "喜欢", "希望", "终于", "the", "a", "is", "so", "really", "today", "we", "love", "what",
          "this", "URL", "MENTION", "DIGIT"]


def generated_weibo(split: str = "valid", n_posts: int = 1200, seed: int = 0) -> WeiboSplit:
    """A GENERATED (not real) bilingual microblog split with the real loader's fields.

    Example:
        >>> d = generated_weibo("test", n_posts=10); len(d), d.source
        (10, 'GENERATED stand-in (not real data)')
    """
    if split not in ("valid", "test"):
        raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
    rng = np.random.default_rng(seed + (0 if split == "valid" else 1))
    posts, tags, convs = [], [], []
    for _ in range(n_posts):
        t = int(rng.integers(len(TOPICS)))
        ts = [TOPICS[t][0]]
        words = TOPICS[t][1].split()
        if rng.random() < 0.1:                                      # a few posts carry two topics
            u = int(rng.integers(len(TOPICS)))
            if u != t:
                ts.append(TOPICS[u][0])
                words += TOPICS[u][1].split()[:2]
        def text(n_key, n_fill, words=words):                       # binds this post's words
            w = list(rng.choice(words, size=n_key)) + list(rng.choice(FILLER, size=n_fill))
            return " ".join(rng.permutation(w))
        posts.append(text(2, 8))
        convs.append(text(3, 12))
        tags.append(ts)
    return WeiboSplit(split, posts, tags, convs, "GENERATED stand-in (not real data)", is_fallback=True)
