"""tools/no_debian.py hides what the Debian packages install (issue 17, item 4), so its run is
what a machine without them gives. (The run itself: as root, ~30 min; results in
benchmarks/results/no_debian.json.)"""
import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("no_debian", ROOT / "tools" / "no_debian.py")
no_debian = importlib.util.module_from_spec(spec)
spec.loader.exec_module(no_debian)
#: Files of the packages that no loader, font scan or browser launch reads.
INERT = ("/usr/share/doc/", "/usr/share/man/", "/usr/share/lintian/", "/usr/share/icons/", "/usr/share/bug/",
         "/usr/share/applications/", "/usr/share/pixmaps/", "/usr/share/gnome-control-center/",
         "/usr/share/chromium/", "/etc/chromium", "/usr/share/fontconfig/", "/etc/fonts/")


def uncovered(files, hidden) -> list[str]:
    """The files neither under a hidden path nor inert."""
    return [f for f in files if not f.startswith(INERT)
            and not any(f == h or f.startswith(h.rstrip("/") + "/") for h in hidden)]


@pytest.mark.parametrize("package", sorted(no_debian.HIDDEN))
def test_every_file_a_package_installs_is_hidden(package):
    if shutil.which("dpkg") is None or subprocess.call(["dpkg", "-s", package], stdout=subprocess.DEVNULL,
                                                         stderr=subprocess.DEVNULL):
        pytest.skip(f"{package} is not installed here")
    files = [f for f in subprocess.check_output(["dpkg", "-L", package], text=True).splitlines()
             if Path(f).is_file()]
    assert files
    assert uncovered(files, no_debian.HIDDEN[package]) == []


def test_the_coverage_check_catches_a_missed_folder():
    files = ["/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", "/usr/share/doc/x/copyright",
             "/usr/share/datasets/other/file"]
    assert uncovered(files, ["/usr/share/datasets/fashion-mnist"]) == ["/usr/share/datasets/other/file"]


def test_the_dpkg_status_copy_drops_only_the_hidden_packages(tmp_path, monkeypatch):
    status = tmp_path / "status"
    status.write_text("Package: chromium\nStatus: install ok installed\n\nPackage: chromium-driver\n"
                      "Status: install ok installed\n\nPackage: bash\nStatus: install ok installed\n")
    real = Path
    monkeypatch.setattr(no_debian, "Path", lambda p: status if p == "/var/lib/dpkg/status" else real(p))
    out = tmp_path / "filtered"
    no_debian._filtered_dpkg_status(out)
    kept = out.read_text()
    assert "Package: chromium\n" not in kept
    assert "Package: chromium-driver\n" in kept and "Package: bash" in kept
