"""Loads the user's score.py from the app directory and calls its init() / run(input).

Either may be a plain function or `async def` (a coroutine is run to completion with asyncio).
run() is called under one lock, so a model that is not thread-safe needs nothing; a score.py
that sets `THREAD_SAFE = True` has run() called concurrently from the server's threads instead.
"""
import asyncio
import importlib.util
import inspect
import os
import sys
import threading
import traceback


def _describe_load_error(path, err):
    if isinstance(err, SyntaxError):
        where = f" (at {err.filename}:{err.lineno})" if err.filename else ""
        return f"cannot load {path}: SyntaxError: {err.msg}{where}"
    return f"cannot load {path}: {type(err).__name__}: {err}"


class LoadError(Exception):
    """Loading score.py failed; the message names the file, `stack` keeps the traceback."""

    def __init__(self, message, stack):
        super().__init__(message)
        self.stack = stack


def _settle(result):
    return asyncio.run(result) if inspect.iscoroutine(result) else result


class ScoringApp:
    def __init__(self, module, path):
        self.path = path
        self._init = getattr(module, "init", None)
        self._run = module.run
        self._lock = None if getattr(module, "THREAD_SAFE", False) is True else threading.Lock()

    def init(self):
        if callable(self._init):
            _settle(self._init())

    def run(self, value):
        if self._lock is None:
            return _settle(self._run(value))
        with self._lock:
            return _settle(self._run(value))


def load_scoring_module(app_dir):
    """Imports APP_DIR/score.py as the module `score` (APP_DIR goes first on sys.path, so the
    app's own helper modules import too). Raises LoadError naming the file."""
    path = os.path.join(app_dir, "score.py")
    if not os.path.isfile(path):
        raise LoadError(f"no scoring module in {app_dir} (expected score.py)", None)
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    try:
        spec = importlib.util.spec_from_file_location("score", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["score"] = module
        spec.loader.exec_module(module)
    except BaseException as err:  # a score.py calling sys.exit() is a failed load too
        sys.modules.pop("score", None)
        if isinstance(err, KeyboardInterrupt):
            raise
        raise LoadError(_describe_load_error(path, err), traceback.format_exc()) from err
    if not callable(getattr(module, "run", None)):
        raise LoadError(f"{path} defines no run(input) function", None)
    return ScoringApp(module, path)
