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
        An ``ipywidgets.VBox``: the controls (side by side when more than one), the readout,
        the figure. Displayed, it also carries a static fallback (:func:`_static_box`): a PNG
        of its current figure and its readout as text, which a viewer without the widgets'
        JavaScript (GitHub, nbconvert, a static site) shows instead of ``VBox(...)``.
    """
    import ipywidgets as W
    from IPython.display import display

    readout = None if describe is None else (W.HTML() if html else W.Label())
    out = None if plot is None else W.Output()
    last = {}

    def redraw(*_):
        st = stats(*(c.value for c in controls))
        if readout is not None:
            readout.value = last["text"] = describe(st)
        if out is not None:
            with out, warnings.catch_warnings():
                # Emoji in labels have no glyph in matplotlib's fonts (a box is drawn); the warning
                # would otherwise fill the widget with red text on every move.
                warnings.filterwarnings("ignore", message="Glyph .* missing from font")
                out.clear_output(wait=True)
                last["fig"] = plot(st)
                display(last["fig"])

    for c in controls:
        c.observe(redraw, names="value")
    redraw()
    row = W.HBox(list(controls)) if len(controls) > 1 else controls[0]
    return _static_box()([row, *(w for w in (readout, out) if w is not None)], fallback=last)


_BOX = None


def _static_box():
    """The explorers' VBox class: its display adds ``image/png`` and a readable ``text/plain``.

    Jupyter front ends that run widgets (JupyterLab, Voila) render the widget view and ignore the
    two; a static viewer picks the picture. The picture is the figure as it is when the cell's
    output is produced (the explorer's first state when the notebook is executed).
    """
    global _BOX
    if _BOX is None:
        import base64
        import io
        import re

        import ipywidgets as W

        class Explorer(W.VBox):
            def __init__(self, children, fallback: dict, **kwargs):
                super().__init__(children, **kwargs)
                self._fallback = fallback

            def _repr_mimebundle_(self, **kwargs):
                data = super()._repr_mimebundle_(**kwargs)
                text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", self._fallback.get("text", ""))).strip()
                data["text/plain"] = ("An interactive explorer (run the notebook in Jupyter to move "
                                      "it); its current state: " + (text or "see the figure"))
                fig = self._fallback.get("fig")
                if fig is not None:
                    buf = io.BytesIO()
                    with warnings.catch_warnings():             # emoji: as in redraw
                        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
                        fig.savefig(buf, format="png", dpi=80)
                    data["image/png"] = base64.b64encode(buf.getvalue()).decode("ascii")
                return data

        _BOX = Explorer
    return _BOX
