"""What the kit needs to know about the notebook it runs in: IPython only, no plotting library.

A leaf module: :func:`cl_teach.setup` (config) and the live plots (plotting) both use it, so the
bottom layer never imports the view layer.
"""
from __future__ import annotations


def show_figures_inline() -> None:
    """Make IPython show ``matplotlib.figure.Figure`` objects as PNG images.

    ``%matplotlib inline`` registers that formatter only once pyplot is imported; the kit's
    figures never touch pyplot, so in a fresh kernel (Voila, nbclient) ``display(fig)`` would print
    ``<Figure size ...>``. :func:`cl_teach.setup` calls this; it does nothing outside IPython.
    """
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:
        return
    ip = get_ipython()
    if ip is not None:
        select_figure_formats(ip, {"png"})


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Voila, nbclient), False in a script or IPython shell."""
    try:
        from IPython import get_ipython
        ip = get_ipython()
        return ip is not None and "IPKernelApp" in ip.config
    except ImportError:
        return False
