"""The test helpers that report on other tests' processes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ended_within

STUCK = """
import sys, threading, time
def stuck_here():
    time.sleep(600)
threading.Thread(target=stuck_here).start()
print("started", file=sys.stderr, flush=True)
stuck_here()
"""


def test_a_process_that_does_not_end_in_time_fails_the_test_showing_its_threads():
    process = subprocess.Popen([sys.executable, "-c", STUCK], stderr=subprocess.PIPE, text=True)
    assert process.stderr.readline() == "started\n"  # however busy the machine
    with pytest.raises(pytest.fail.Exception) as failed:
        ended_within(process, 1)
    assert process.returncode is not None
    assert str(failed.value).count("in stuck_here") == 2  # both threads, where each waits
