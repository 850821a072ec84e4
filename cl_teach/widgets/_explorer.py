"""The body every explorer shares: controls, a readout and a figure that redraw together."""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence


def explorer(controls: Sequence, stats: Callable, describe: Callable | None = None,
             plot: Callable | None = None, html: bool = False):
    """Lay out ``controls`` above a one-line readout and a figure, and redraw both on every move.

    Each redraw calls ``stats`` on the controls' current values, then sets the readout to
    ``describe`` of the result and shows ``plot`` of it in place of the previous figure. The
    first drawing happens here, before the box is returned.

    Args:
        controls: the ipywidgets whose ``value`` feeds ``stats``, in ``stats``'s argument order.
        stats: ``stats(*values)`` -> the numbers behind the explorer (any object).
        describe: ``describe(stats)`` -> the readout's text; ``None``: no readout.
        plot: ``plot(stats)`` -> a matplotlib Figure; ``None``: no figure.
        html: the readout is HTML (an ``ipywidgets.HTML``) rather than plain text (a ``Label``).

    Returns:
        The ``ipywidgets.VBox``: the controls (side by side when more than one), the readout,
        the figure.
    """
    import ipywidgets as W
    from IPython.display import display

    readout = None if describe is None else (W.HTML() if html else W.Label())
    out = None if plot is None else W.Output()

    def redraw(*_):
        st = stats(*(c.value for c in controls))
        if readout is not None:
            readout.value = describe(st)
        if out is not None:
            with out, warnings.catch_warnings():
                # Emoji in labels have no glyph in matplotlib's fonts (a box is drawn); the warning
                # would otherwise fill the widget with red text on every move.
                warnings.filterwarnings("ignore", message="Glyph .* missing from font")
                out.clear_output(wait=True)
                display(plot(st))

    for c in controls:
        c.observe(redraw, names="value")
    redraw()
    row = W.HBox(list(controls)) if len(controls) > 1 else controls[0]
    return W.VBox([row, *(w for w in (readout, out) if w is not None)])
