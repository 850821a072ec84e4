"""The other half of the notebooks' grader runs (test_graders.py), in a file of its own so that
``pytest -n 2 --dist loadfile`` runs the two halves on two workers."""
import pytest
from test_graders import GRADED, check_graders

pytestmark = pytest.mark.notebook


@pytest.mark.parametrize("stem", GRADED[1::2])
def test_derive_graders_catch_broken_stubs(stem, monkeypatch):
    check_graders(stem, monkeypatch)
