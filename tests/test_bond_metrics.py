"""The bonding checks' pure measurement helpers, on the host."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "testcases" / "bonding"))

from test_active_backup import loss_window_ms  # noqa: E402


def test_loss_window_is_measured_in_the_senders_clock():
    send_t = [i * 0.002 for i in range(10)]           # one packet every 2 ms
    assert loss_window_ms(send_t, set(range(10))) == 0.0, "nothing lost: no window"
    # 3, 4 and 5 lost: from the send of 2 (the last that arrived) to the send of 6 (the first after)
    assert abs(loss_window_ms(send_t, {0, 1, 2, 6, 7, 8, 9}) - 8.0) < 1e-9
    # the longest of two runs counts; a loss before the first arrival has no start and does not
    assert abs(loss_window_ms(send_t, {1, 2, 4, 8, 9}) - 8.0) < 1e-9

