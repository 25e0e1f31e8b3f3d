"""Custom metrics from scoring code: `from edgeml_runtime import metrics`, then
`metrics.count(name, n=1)` and `metrics.observe(name, value)`. `GET /metrics` serves the totals
since the process started (see snapshot())."""
import math
import re
import threading
from datetime import datetime, timezone

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")
# Distinct names (counters and observations together); more are dropped and counted.
MAX_NAMES = 100


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) or hasattr(value, "item")


def _finite_total(what, total):
    """A total that overflows would make GET /metrics fail (no inf in JSON): the update is refused."""
    try:
        finite = math.isfinite(float(total))
    except OverflowError:  # an int beyond any float
        finite = False
    if not finite:
        raise ValueError(f"{what}: the total would overflow (not a finite number); the update is refused")
    return total


class Metrics:
    def __init__(self):
        self.started_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self._counters = {}
        self._observations = {}
        self._dropped = 0
        self._lock = threading.Lock()

    @staticmethod
    def _check_name(name):
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"metrics: invalid name {name!r} (letters, digits, _ and ., starting with a letter or _, at most 64 characters)")

    def _has_room(self, table, name):
        if name in table or len(self._counters) + len(self._observations) < MAX_NAMES:
            return True
        self._dropped += 1
        return False

    def count(self, name, n=1):
        """Adds n (default 1, finite and >= 0) to the counter `name`."""
        self._check_name(name)
        if not _number(n) or not math.isfinite(float(n)) or float(n) < 0:
            raise ValueError(f"metrics.count({name!r}): n must be a finite number >= 0, not {n!r}")
        with self._lock:
            if self._has_room(self._counters, name):
                total = self._counters.get(name, 0) + (n.item() if hasattr(n, "item") else n)
                self._counters[name] = _finite_total(f"metrics.count({name!r})", total)

    def observe(self, name, value):
        """Records one value (finite) of the observation `name`: count, sum, min and max are kept."""
        self._check_name(name)
        if not _number(value) or not math.isfinite(float(value)):
            raise ValueError(f"metrics.observe({name!r}): value must be a finite number, not {value!r}")
        value = float(value)
        with self._lock:
            if not self._has_room(self._observations, name):
                return
            o = self._observations.get(name)
            if o is None:
                self._observations[name] = {"count": 1, "sum": value, "min": value, "max": value}
            else:
                o["sum"] = _finite_total(f"metrics.observe({name!r})", o["sum"] + value)
                o["count"] += 1
                o["min"] = min(o["min"], value)
                o["max"] = max(o["max"], value)

    def snapshot(self):
        """The `GET /metrics` document: cumulative since the process started."""
        with self._lock:
            return {
                "startedAt": self.started_at,
                "counters": dict(self._counters),
                "observations": {k: dict(v) for k, v in self._observations.items()},
                "dropped": self._dropped,
            }


metrics = Metrics()
