"""Counters and gauges in the Prometheus text format (version 0.0.4).

Labels take only codes, kinds and authority ids: nothing that could be person data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable


class Metrics:
    def __init__(self) -> None:
        self._counters: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
        self._gauges: dict[str, Callable[[], float]] = {}
        self._help: dict[str, str] = {}

    def count(self, name: str, help: str, amount: int = 1, **labels: str) -> None:
        self._help.setdefault(name, help)
        self._counters[(name, tuple(sorted(labels.items())))] += amount

    def gauge(self, name: str, help: str, read: Callable[[], float]) -> None:
        self._help[name] = help
        self._gauges[name] = read

    def render(self) -> str:
        lines: list[str] = []
        by_name: dict[str, list[str]] = {}
        for (name, labels), value in sorted(self._counters.items()):
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            by_name.setdefault(name, []).append(f"{name}{{{text}}} {value}" if text
                                                else f"{name} {value}")
        for name, samples in by_name.items():
            lines += [f"# HELP {name} {self._help[name]}", f"# TYPE {name} counter", *samples]
        for name, read in sorted(self._gauges.items()):
            lines += [f"# HELP {name} {self._help[name]}", f"# TYPE {name} gauge",
                      f"{name} {read():g}"]
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    """Label values as the text format wants them; some come from the peer's answers."""
    return value[:64].replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
