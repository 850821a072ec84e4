"""environment.yml (the conda path) installs what the pip path does (issue 17, item 4).

conda's channels cannot be reached from the machines this course is tested on, so conda itself is
never run here; instead this test keeps the file in step with pyproject.toml and the set-up
script: the same Python, the same torch pins, the project with the same extra.
"""
import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")
tomllib = pytest.importorskip("tomllib")      # Python >= 3.11
ROOT = Path(__file__).resolve().parent.parent


def env_pip_lines():
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip = [d for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip) == 1, "environment.yml should hold one pip: section"
    return env, pip[0]["pip"]


def setup_torch_pins():
    text = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    return dict(re.findall(r'"(torch|torchvision)==([0-9.]+)"', text))


def test_environment_installs_the_project_with_its_test_extra():
    _, pip = env_pip_lines()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"]
    assert "-e .[test]" in pip, f"environment.yml must install the project as the README does: {pip}"
    assert "test" in extras


def test_environment_pins_the_torch_the_setup_installs():
    _, pip = env_pip_lines()
    pins = dict(re.match(r"(torch|torchvision)==([0-9.]+)$", line).groups()
                for line in pip if re.match(r"(torch|torchvision)==", line))
    assert pins == setup_torch_pins(), (f"environment.yml pins {pins}, scripts/setup.sh installs "
                                        f"{setup_torch_pins()}")


def test_environment_python_satisfies_requires_python():
    env, _ = env_pip_lines()
    py = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    major, minor = map(int, py.split("=")[1].split(".")[:2])
    floor = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    fmaj, fmin = map(int, re.match(r">=(\d+)\.(\d+)", floor).groups())
    assert (major, minor) >= (fmaj, fmin), f"{py} is below requires-python {floor}"


def test_no_package_is_listed_outside_pyproject():
    """Every package comes from pyproject.toml (via -e .[test]), not from a second list that drifts."""
    env, pip = env_pip_lines()
    conda = [d for d in env["dependencies"] if isinstance(d, str) and not d.startswith(("python=", "pip"))]
    extra_pip = [p for p in pip if not p.startswith(("-e ", "torch==", "torchvision=="))]
    assert not conda and not extra_pip, f"list these in pyproject.toml instead: {conda + extra_pip}"
