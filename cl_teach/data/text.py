"""Tokenisers and a vocabulary: texts -> padded token ids for the text towers.

Tokenisers (all pure functions ``str -> list[str]``):

* ``"char"`` -- one token per non-space character: the simplest Chinese tokeniser, no
  dictionary, no out-of-vocabulary words (characters are shared across words);
* ``"jieba"`` -- Chinese word segmentation with jieba's dictionary (Sun, 2012-);
* ``"space"`` -- split on whitespace: for text that is already segmented (the Weibo corpus);
* ``"word"`` -- lower-cased English words and single punctuation marks.

:class:`Vocab` maps tokens to ids (0 = padding, 1 = unknown) and encodes a list of texts as
one padded (N, L) LongTensor, the input of the text towers of :mod:`cl_teach.models.text`.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import torch

from .._validate import check_positive

__all__ = ["tokenize", "TOKENIZERS", "Vocab", "char_tokens", "word_tokens", "jieba_tokens", "space_tokens"]

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def char_tokens(text: str) -> list[str]:
    """Characters, spaces dropped: ``"狗 脸"`` -> ``["狗", "脸"]``."""
    return [c for c in text if not c.isspace()]


def space_tokens(text: str) -> list[str]:
    """Whitespace split, for pre-segmented text (the Weibo posts)."""
    return text.split()


def word_tokens(text: str) -> list[str]:
    """Lower-cased English words and punctuation marks: ``"Dog face!"`` -> ``["dog", "face", "!"]``."""
    return _WORD.findall(text.lower())


def jieba_tokens(text: str) -> list[str]:
    """Chinese words by jieba (its dictionary loads once, ~1-2 s, quietly)."""
    try:
        import jieba
    except ImportError as e:
        raise ImportError(f"the 'jieba' tokeniser needs the PyPI package jieba: "
                          f"pip install jieba ({e})") from e
    jieba.setLogLevel(60)
    return [w for w in jieba.lcut(text) if not w.isspace()]


TOKENIZERS: dict[str, Callable[[str], list[str]]] = {
    "char": char_tokens, "jieba": jieba_tokens, "space": space_tokens, "word": word_tokens}


def tokenize(text: str, kind: str = "char") -> list[str]:
    """Tokenise one text with the tokeniser named ``kind`` (see :data:`TOKENIZERS`).

    Example:
        >>> tokenize("红色 圆形", "char"), tokenize("A red circle.", "word")
        (['红', '色', '圆', '形'], ['a', 'red', 'circle', '.'])
    """
    if kind not in TOKENIZERS:
        raise ValueError(f"kind must be one of {sorted(TOKENIZERS)}, got {kind!r}")
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return TOKENIZERS[kind](text)


class Vocab:
    """Token <-> id, built from a corpus; id 0 pads, id 1 stands for unknown tokens.

    Args:
        tokens: the vocabulary, most frequent first (specials are added in front).
        tokenizer: the :data:`TOKENIZERS` name used by :meth:`encode`.

    Example:
        >>> v = Vocab.build(["a red circle", "a blue square"], tokenizer="word")
        >>> len(v), v.encode(["a red star"], max_len=4).tolist()
        (7, [[2, 5, 1, 0]])
    """

    def __init__(self, tokens: Sequence[str], tokenizer: str = "char"):
        if tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {sorted(TOKENIZERS)}, got {tokenizer!r}")
        self.tokenizer = tokenizer
        self.itos: list[str] = [PAD, UNK] + [t for t in tokens if t not in (PAD, UNK)]
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(cls, texts: Iterable[str], tokenizer: str = "char", min_freq: int = 1,
              max_size: int | None = None) -> Vocab:
        """The tokens of ``texts`` seen at least ``min_freq`` times, the ``max_size`` most frequent."""
        check_positive("min_freq", min_freq, integer=True)
        if max_size is not None:
            check_positive("max_size", max_size, integer=True)
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, got one str")
        counts = Counter(t for text in texts for t in tokenize(text, tokenizer))
        ranked = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        return cls(ranked[:max_size] if max_size else ranked, tokenizer)

    def __len__(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens, tokenizer={self.tokenizer!r})"

    def encode(self, texts: Sequence[str], max_len: int = 32) -> torch.Tensor:
        """(N, max_len) long ids, truncated and right-padded with 0; unknown tokens -> 1."""
        check_positive("max_len", max_len, integer=True)
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, got one str (wrap it: [text])")
        out = torch.zeros(len(texts), max_len, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = [self.stoi.get(t, 1) for t in tokenize(text, self.tokenizer)][:max_len]
            out[i, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out

    def decode(self, ids: torch.Tensor) -> list[str]:
        """Ids back to text (padding dropped; tokens joined by a space, or nothing for chars)."""
        sep = "" if self.tokenizer in ("char",) else " "
        return [sep.join(self.itos[i] for i in row.tolist() if i != 0) for row in ids]
