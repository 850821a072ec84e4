"""nbtool retext: a comment or markdown change keeps the outputs; a code or NBVAL change is refused."""
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import nbtool  # noqa: E402

SRC = "# %% [markdown]\n# # t\n\n# %%\n# NBVAL_CHECK_OUTPUT\nx = 1  # one\nprint(x)\n"


@pytest.fixture
def course(tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()
    monkeypatch.setattr(nbtool, "NB_DIR", tmp_path)
    monkeypatch.setattr(nbtool, "SRC_DIR", tmp_path / "src")
    (tmp_path / "src" / "01_t.py").write_text(SRC)
    nb = nbtool.build("01_t")
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nbformat.write(nb, tmp_path / "01_t.ipynb")
    return tmp_path


def test_comment_and_markdown_changes_keep_the_outputs(course):
    new = SRC.replace("# one", "# the answer").replace("# # t", "# # title")
    (course / "src" / "01_t.py").write_text(new)
    assert nbtool.retext("01_t") is True
    nb = nbformat.read(course / "01_t.ipynb", as_version=4)
    assert "the answer" in nb.cells[1].source and nb.cells[0].source == "# title"
    assert nb.cells[1].outputs[0]["text"] == "1\n"
    assert nbtool.retext("01_t") is False                        # already in step


@pytest.mark.parametrize("change", [("x = 1", "x = 2"), ("# NBVAL_CHECK_OUTPUT\n", "# NBVAL_IGNORE_OUTPUT\n"),
                                    ("print(x)\n", "print(x)\n\n# %%\nprint(2)\n")])
def test_code_nbval_or_cell_changes_are_refused(course, change):
    (course / "src" / "01_t.py").write_text(SRC.replace(*change))
    with pytest.raises(ValueError, match="re-execute"):
        nbtool.retext("01_t")
