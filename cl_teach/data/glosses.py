"""English definitions: the WordNet glosses of ImageNet's 21,844 noun synsets, as shipped inside timm.

WordNet (Miller, 1995; Princeton University, the WordNet 3.0 licence: use, copy, modify and
distribute with the copyright notice) gives every synset a list of names (lemmas, "tench, Tinca
tinca") and a definition written by lexicographers ("freshwater dace-like game fish of Europe and
western Asia noted for ability to survive outside water"). The wheel of ``timm`` (Apache-2.0; a
dependency of ``open_clip_torch`` in the kit's test extra) ships both for the ImageNet-21k synsets
(``timm/data/_info/imagenet_synset_to_lemma.txt`` and ``..._definition.txt``), and the list of the
1,000 ImageNet-1k synsets. Read from the installed wheel; nothing is downloaded.

A real English task for sentence embeddings, the *reverse dictionary* (Hill et al., TACL 2016):
embed a definition and find the name it defines among many.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Glosses", "wordnet_glosses"]

_HOW = ("The WordNet glosses come inside the timm wheel: pip install timm (or the kit's test extra, "
        "pip install -e '.[test]', which brings it with open_clip_torch).")


@dataclass
class Glosses:
    """WordNet synsets as aligned lists.

    ``synsets`` (WordNet ids), ``names`` (the lemmas, comma-separated) and ``definitions``;
    ``in_1k[i]`` says whether synset i is one of ImageNet-1k's 1,000 classes.
    """

    synsets: list[str]
    names: list[str]
    definitions: list[str]
    in_1k: list[bool]

    def __len__(self) -> int:
        return len(self.synsets)

    def __repr__(self) -> str:
        return f"Glosses({len(self)} WordNet synsets, {sum(self.in_1k)} of them ImageNet-1k classes)"


def _info_dir() -> Path:
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"timm is not installed. {_HOW}")
    d = Path(next(iter(spec.submodule_search_locations))) / "data" / "_info"
    if not (d / "imagenet_synset_to_definition.txt").is_file():
        raise FileNotFoundError(f"no WordNet definitions in {d}. {_HOW}")
    return d


def _read_tsv(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("\t")
        if key and value.strip():
            out[key] = value.strip()
    return out


def wordnet_glosses() -> Glosses:
    """Every synset with a name and a definition, in timm's order.

    Raises:
        ImportError: when timm is not installed. FileNotFoundError: when its data files are missing.

    Example:
        >>> g = wordnet_glosses()                                   # doctest: +SKIP
        >>> g.names[g.synsets.index("n01440764")]                   # doctest: +SKIP
        'tench, Tinca tinca'
    """
    d = _info_dir()
    names = _read_tsv(d / "imagenet_synset_to_lemma.txt")
    defs = _read_tsv(d / "imagenet_synset_to_definition.txt")
    one_k = set((d / "imagenet_synsets.txt").read_text(encoding="utf-8").split())
    keys = [k for k in defs if k in names]
    return Glosses(keys, [names[k] for k in keys], [defs[k] for k in keys], [k in one_k for k in keys])
