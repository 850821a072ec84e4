"""Test-wide settings (root conftest: outside testpaths, so --doctest-modules never collects it)."""
import os

import pytest
import torch

os.environ.setdefault("CL_TEACH_THREADS", "1")
torch.set_num_threads(int(os.environ["CL_TEACH_THREADS"]))   # as the notebooks: one thread


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
