#!/usr/bin/env bash
# Set up cl-teach on a fresh machine: system data packages (when root with apt), a virtual
# environment with the package, the notebook stack and the test tools, and the data check.
# Idempotent: a second run only checks. Used by `make lab` and `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

# 1. System packages: the real data sets and the browser for the widget tests.
APT_PKGS="dataset-fashion-mnist chromium fonts-noto-color-emoji fonts-noto-cjk openclipart-png"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo ">> apt-get install$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo ">> NOTE: not root or no apt-get, so these Debian packages are not installed:$missing"
    echo "   Without them (README: 'Without Debian'), each notebook says what it uses instead:"
    echo "   dataset-fashion-mnist   scikit-learn's digits, claims reported not asserted; or once, online:"
    echo "                           $VENV/bin/python -m cl_teach.prepare --download (the real set, 30 MB)"
    echo "   fonts-noto-color-emoji  DejaVu Sans's ~170 black emoji glyphs in notebooks 15, 16, 19"
    echo "   fonts-noto-cjk          a system CJK font if any, else Chinese in figures draws as boxes"
    echo "   chromium                the browser tests skip; openclipart-png: its tests skip"
  fi
fi

# 2. The virtual environment.
stamp="$VENV/.cl-teach-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
  # The torch builds that lie on this machine's disk (torch 2.13 CPU fails with torchvision).
  "$VENV/bin/python" -m pip install -q "torch==2.14.1" "torchvision==0.29.1" 2>&1 | grep -v "is ignored" || true
  "$VENV/bin/python" -m pip install -q -e ".[test]" 2>&1 | grep -v "is ignored" || true
  "$VENV/bin/python" -c "import cl_teach, torch, torchvision, nbval, lightly" \
    || { echo "!! installation failed (see messages above)"; exit 1; }
  # A kernel spec pointing at this venv's python, so JupyterLab, Voila and nbclient use it.
  "$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (cl-teach)" >/dev/null
  touch "$stamp"
fi
# The course's JupyterLab settings (jupyter/lab-overrides.json: no news or update pop-up over the
# output, no request leaving the machine), where this venv's JupyterLab reads its defaults.
lab_overrides="$VENV/share/jupyter/lab/settings/overrides.json"
if ! cmp -s jupyter/lab-overrides.json "$lab_overrides"; then
  mkdir -p "$(dirname "$lab_overrides")"
  cp jupyter/lab-overrides.json "$lab_overrides"
  echo ">> JupyterLab settings: $lab_overrides"
fi

# 3. Data check and caches (numba's first `import umap` takes ~30 s: paid here, not in a notebook).
"$VENV/bin/python" -m cl_teach.prepare
