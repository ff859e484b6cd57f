"""A process's output read as it comes, to wait on what it says (a bounded wait on the event itself)."""

from __future__ import annotations

import queue
import re
import subprocess
import threading
import time

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class OutputLines:
    """The lines of a process's text output (colours removed), read by a thread of their own."""

    def __init__(self, process: subprocess.Popen[str], *, what: str) -> None:
        assert process.stdout is not None, "start the process with stdout=subprocess.PIPE, text=True"
        self.process, self.what = process, what
        self.seen: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(ANSI.sub("", line))
        self._lines.put(None)

    def wait_for(self, pattern: str, *, timeout: float) -> re.Match[str]:
        """The next line matching ``pattern``; ``AssertionError`` with the output if none comes within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{self.what} never printed {pattern!r}:\n{''.join(self.seen)}") from None
            if line is None:
                raise AssertionError(f"{self.what} ended before printing {pattern!r}:\n{''.join(self.seen)}")
            self.seen.append(line)
            if found := re.search(pattern, line):
                return found

    def close(self) -> None:
        """Once the process has ended: finish reading and close its output."""
        self._reader.join(timeout=10)
        assert not self._reader.is_alive(), f"{self.what} ended, but a process it started still holds its output"
        assert self.process.stdout is not None
        self.process.stdout.close()
