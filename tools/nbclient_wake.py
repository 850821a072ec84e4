"""The nbclient / Voila stall (issue 17): its cause, and the fix, for every client the course drives.

Cause. nbclient (and Voila, whose executor is nbclient's) mimics a front end for
``ipywidgets.Output``: each output the kernel sends into an Output widget (every explorer's
``with out: clear_output(wait=True); display(fig)``) makes nbclient's ``OutputWidget.sync_state``
send a ``comm_msg`` back to the kernel *on the shell channel*, while the same client is awaiting
that cell's ``execute_reply`` on that channel (``zmq.asyncio`` ``poll``). jupyter_client's
``Session.send`` sends through a synchronous shadow of the asyncio socket, so pyzmq's asyncio
wrapper never hears of that send. A ``zmq_send`` processes the socket's pending commands and
re-arms ZeroMQ's edge-triggered ``ZMQ_FD``: when the reply has just arrived, the send swallows the
only wake-up it would have caused. The reply sits in the socket, the kernel is idle, and the client
waits until the cell's timeout, when pyzmq's poller makes a last ``poll(0)``, finds the reply and
goes on as if nothing happened: nbtool's runs lost exactly one cell timeout (899.6 s of 900) after
an explorer cell; Voila, which has no timeout, waits for ever ("Executing 2 of 3"). nbval drives
the kernel with a blocking client and no Output-widget mimic, so it never stalled.

Measured here (tools/nbclient_wake.py's test, tests/test_nbclient_wake.py; 2-core AMD EPYC,
ipykernel 6.31, jupyter_client 8.10, pyzmq 27.3, nbclient 0.11): 30-cell notebooks whose cells
redraw an Output widget 40 times, cell timeout 4 s: 11 of 120 cells waited the whole timeout with
nbclient as it is, 0 of 120 with the mimic's send switched off, and 0 of 120 with this fix.
Upstream: jupyter/nbclient#312 (the symptom, open) and #311 (a workaround inside nbclient's poll).

Fix. After the mimic sends, wake the asyncio socket as pyzmq does after its own sends
(``_AsyncSocket._schedule_remaining_events``: read ``ZMQ_EVENTS``; if a message is waiting,
handle it on the loop's next turn). :func:`install` patches nbclient's ``OutputWidget`` once;
``tools/nbtool.py`` calls it, and the browser tests start Voila through ``python tools/nbclient_wake.py
voila ...`` so its executor gets it too.
"""
from __future__ import annotations

import sys


def install() -> None:
    """Make nbclient's Output-widget mimic wake the shell socket after each send (idempotent)."""
    from nbclient import output_widget

    cls = output_widget.OutputWidget
    if getattr(cls, "_cl_teach_wakes", False):
        return
    send = cls._publish_msg

    def _publish_msg(self, *args, **kwargs):
        send(self, *args, **kwargs)
        wake = getattr(self.kernel_client.shell_channel.socket, "_schedule_remaining_events", None)
        if wake is not None:                      # a zmq.asyncio socket: re-check its events
            wake()

    cls._publish_msg = _publish_msg
    cls._cl_teach_wakes = True


if __name__ == "__main__":                        # python tools/nbclient_wake.py voila ARGS...
    if sys.argv[1:2] != ["voila"]:
        raise SystemExit("usage: python tools/nbclient_wake.py voila [voila's arguments]")
    install()
    from voila.app import main
    sys.argv = ["voila", *sys.argv[2:]]
    sys.exit(main())
