"""Where every loader looks for its files: one search order, one "not found" message.

A loader looks, in order, in the folder or file its caller passed, then in its environment
variable, then in its defaults (a Debian package's path, the course's ``../shared/data``, the
cache ``data/cache``), and when nothing is there it raises an error naming every place it tried
and how to get the data.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["search_path", "find_first"]


def search_path(given: str | os.PathLike | None, env_var: str,
                defaults: Sequence[str | os.PathLike]) -> list[Path]:
    """The places to look, in order: ``given`` (when set), ``$env_var`` (when set), the defaults.

    Example:
        >>> [p.name for p in search_path("here", "CL_TEACH_UNSET_EXAMPLE", ["/a/b", "c"])]
        ['here', 'b', 'c']
    """
    paths = [Path(given)] if given not in (None, "") else []
    if os.environ.get(env_var):
        paths.append(Path(os.environ[env_var]))
    return paths + [Path(d) for d in defaults]


def find_first(paths: Sequence[Path], what: str, how: str, is_dir: bool = False) -> Path:
    """The first of ``paths`` that is a file (a folder with ``is_dir``).

    Args:
        paths: places to try, in order (:func:`search_path`).
        what: what is looked for, for the error message.
        how: how to install it, for the error message.
        is_dir: look for a folder rather than a file.

    Raises:
        FileNotFoundError: naming every place tried and ``how``.
    """
    for p in paths:
        if (p.is_dir() if is_dir else p.is_file()):
            return p
    raise FileNotFoundError(f"{what} not found: looked in {', '.join(map(str, paths))}. {how}")
