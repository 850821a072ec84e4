"""The per-part time report of the root conftest: each kind of test lands in its own part."""
import importlib.util
from pathlib import Path

ROOT_CONFTEST = Path(__file__).resolve().parent.parent / "conftest.py"
spec = importlib.util.spec_from_file_location("root_conftest", ROOT_CONFTEST)
root_conftest = importlib.util.module_from_spec(spec)
spec.loader.exec_module(root_conftest)


def test_suite_part():
    part = root_conftest.suite_part
    assert part("notebooks/05_simclr.ipynb::Cell 7") == "notebooks"
    assert part("tests/browser/test_temperature_explorer.py::test_temperature_explorer") == "browser"
    assert part("tests/test_fuzz.py::test_valid_call_works[nt_xent]") == "units"
    assert part("cl_teach/losses/info_nce.py::cl_teach.losses.info_nce.info_nce") == "units"
    assert part("notebooks/src/05_simclr.py") == "units"       # a source file is not an executed notebook
