"""Hashtag box (notebook 17): type a post, read its top-k hashtags."""
from __future__ import annotations

from collections.abc import Callable

from ._explorer import explorer


def hashtag_box(recommend: Callable, value: str = "今天 的 我是歌手 现场 太 好听 了",
                k: int = 3):
    """Type a post, read its top-``k`` hashtags (notebook 17).

    Args:
        recommend: ``recommend(text, k) -> [(hashtag, score), ...]``, e.g. the notebook's
            CD-TOM system.
        value: the starting text.
        k: the number of hashtags shown.

    Returns:
        The ``ipywidgets.VBox``; display it (the last expression of a cell).
    """
    import ipywidgets as W

    box = W.Text(value=value, description="post", continuous_update=False,
                 layout=W.Layout(width="90%"))

    def describe(tags):
        rows = "".join(f"<li>#{tag}# &nbsp; <small>score {score:.2f}</small></li>" for tag, score in tags)
        return f"<ol>{rows}</ol>"

    return explorer([box], lambda text: recommend(text, k), describe=describe, html=True)
