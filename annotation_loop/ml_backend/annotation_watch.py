"""New annotations of the served project, for retraining, counted from Label Studio's own
project counts.

Asking Label Studio works wherever the backend runs. Its webhooks do not: its SSRF protection
refuses to post to loopback and private addresses, where a backend next to it usually is. A
webhook that does arrive makes the watch look at once instead of at the next interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from annotation_loop.errors import LabelStudioHTTPError, LabelStudioUnreachable

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 10.0


class AnnotationWatch:
    """Records on `record` how many annotations `count` (the project's annotations that label
    something, skipped tasks excluded) gained since the last look; the first look sets the
    starting point. A count that shrank (annotations deleted) is the new starting point."""

    def __init__(
        self,
        count: Callable[[], int],
        record: Callable[[int], None],
        interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        self._count = count
        self._record = record
        self._interval_s = interval_s
        self._last: int | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def look(self) -> None:
        """Compares the count with the last one; Label Studio failing is logged, not raised."""
        try:
            count = self._count()
        except (LabelStudioUnreachable, LabelStudioHTTPError) as error:
            logger.warning("Could not count the project's annotations (%s); trying again", error)
            return
        if self._last is not None and count > self._last:
            logger.info("%d new annotations", count - self._last)
            self._record(count - self._last)
        self._last = count

    def nudge(self) -> None:
        """Something changed (a webhook said so): look now rather than at the next interval."""
        self._wake.set()

    def start(self) -> None:
        """Looks now, then every interval (or when nudged) on a background thread, until `stop`."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._watch, name="annotation-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        self._wake.set()
        self._thread.join()
        self._thread = None

    def _watch(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            # Whatever counting raises, retraining must not stop for good.
            try:
                self.look()
            except Exception:
                logger.exception("Counting the project's annotations failed; trying again")
            self._wake.wait(self._interval_s)
