"""Read a py-spy raw profile: where a process spent its time (``python -m tests.bench.profile FILE``)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path


def summary(path: Path, *, top: int = 40, thread: str = "") -> str:
    """The frames that held the most samples (inclusive), busy samples only (not waiting in select)."""
    inclusive: Counter[str] = Counter()
    busy = idle = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or (thread and thread not in stack):
            continue
        frames = stack.split(";")
        if "PubSubWorkerThread" in stack:
            continue  # RQ's pub/sub listener: it only ever waits
        if frames[-1].startswith(("EpollSelector.select", "select ")):
            idle += int(count)
            continue
        busy += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    lines = [f"{path.name}: {busy} busy samples, {idle} waiting in the event loop's select"]
    lines += [f"{n:7d} {100 * n / max(busy, 1):5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(summary(Path(name)))
