"""One JSON object per line on stdout: {"level", "time", "msg", **fields}. No request bodies."""
import json
import sys
import threading
from datetime import datetime, timezone

_lock = threading.Lock()


def _now():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def log(level, msg, **fields):
    line = {"level": level, "time": _now(), "msg": msg}
    for key, value in fields.items():
        if key not in line and value is not None:
            line[key] = value
    text = json.dumps(line, default=str, separators=(",", ":"))
    with _lock:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def info(msg, **fields):
    log("info", msg, **fields)


def warn(msg, **fields):
    log("warn", msg, **fields)


def error(msg, **fields):
    log("error", msg, **fields)


def fatal(msg, **fields):
    log("fatal", msg, **fields)
