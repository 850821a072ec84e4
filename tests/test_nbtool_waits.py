"""tools/nbtool.recheck_waits: a missed wake-up costs one slice, not the whole timeout.

The fake channel below reproduces the failure seen under nbclient (a reply sits in the socket
while the first wait sleeps to its timeout); the unpatched wait fails the same check."""
import asyncio
import sys
import time
from pathlib import Path
from queue import Empty

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import nbtool  # noqa: E402


class MissedWakeup:
    """get_msg: the first call misses the pending message and waits out its timeout."""

    def __init__(self, message=None):
        self.calls, self.message = 0, message

    async def get_msg(self, timeout=None):
        self.calls += 1
        if self.calls == 1:
            await asyncio.sleep(timeout)
            raise Empty
        if self.message is None:
            await asyncio.sleep(timeout)
            raise Empty
        return self.message


def timed(channel, timeout):
    t = time.monotonic()
    try:
        result = asyncio.run(channel.get_msg(timeout=timeout))
    except Empty:
        result = Empty
    return result, time.monotonic() - t


def test_a_missed_wakeup_costs_one_slice():
    ch = MissedWakeup({"msg_type": "execute_reply"})
    nbtool.recheck_waits(ch, step=0.05)
    msg, took = timed(ch, timeout=3.0)
    assert msg == {"msg_type": "execute_reply"} and took < 1.0, took


def test_without_the_fix_the_wait_runs_to_its_timeout():
    msg, took = timed(MissedWakeup({"msg_type": "execute_reply"}), timeout=0.5)
    assert msg is Empty and took >= 0.5


def test_timeouts_are_kept():
    ch = MissedWakeup(None)                   # nothing ever arrives
    nbtool.recheck_waits(ch, step=0.05)
    msg, took = timed(ch, timeout=0.3)
    assert msg is Empty and 0.3 <= took < 1.0, took
    assert ch.calls >= 3                      # it looked again, slice by slice


def test_no_timeout_waits_until_a_message():
    ch = MissedWakeup({"msg_type": "status"})
    nbtool.recheck_waits(ch, step=0.05)
    assert timed(ch, timeout=None)[0] == {"msg_type": "status"}


@pytest.mark.parametrize("step", [0.0, -1.0])
def test_step_must_be_positive(step):
    with pytest.raises(ValueError, match="step"):
        nbtool.recheck_waits(MissedWakeup(), step=step)
