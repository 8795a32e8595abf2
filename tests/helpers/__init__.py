"""Helpers every test directory shares: bounded waiting and process accounting.

* :func:`eventually` / :func:`eventually_sync` (``tests/helpers/wait.py``) poll a condition until it
  holds or a deadline passes, failing with what was awaited and the last value seen; every wait in the
  suite goes through them instead of a hand-written ``while time.monotonic() < deadline`` loop.
* :func:`spawned` (``tests/helpers/processes.py``) records the child processes started while it is
  active, so a test can prove "nothing was started" with a counter instead of a stopwatch, and the
  marker plugin (``tests/helpers/markers.py``) can refuse processes in tests marked ``unit``.
"""

from tests.helpers.processes import spawned
from tests.helpers.wait import eventually, eventually_sync

__all__ = ["eventually", "eventually_sync", "spawned"]
