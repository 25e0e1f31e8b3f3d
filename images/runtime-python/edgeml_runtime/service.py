"""The scoring service's state: schema.json, the scoring module, and init() run once.

It never exits on the user's errors: a failed load or init() is reported by /health, a failed
run() by a 500.
"""
import json
import os
import threading
import time
import traceback

from . import log
from .app import LoadError, load_scoring_module
from .decode import compile_decoder
from .openapi import openapi_document
from .schema import compile_check, read_scoring_schema

MAX_OUTPUT_WARNINGS = 50


def _to_json(value):
    # numpy arrays and scalars (and anything else array-like) become lists / plain numbers.
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dump_json(value):
    return json.dumps(value, default=_to_json, allow_nan=False, separators=(",", ":"))


def _ms(since):
    return round((time.monotonic() - since) * 1000)


class Service:
    def __init__(self, config):
        self.config = config
        self.phase = "starting"  # -> "ready" | "failed"
        self.failure = None
        self.app = None
        self.check_input = None
        self.check_output = None
        self.decode = None
        self._input_schema = None
        self.openapi = None
        self._output_warnings = set()
        self._lock = threading.Lock()

    def _fail(self, msg, message, stack=None, **fields):
        self.failure = message
        self.phase = "failed"
        log.error(msg, error=message, stack=stack, **fields)

    def load_schema(self):
        """Reads and compiles schema.json; cheap, done before listening."""
        try:
            schema = read_scoring_schema(os.path.join(self.config.app_dir, "schema.json"))
            self.check_input = compile_check(schema["input"], "input")
            self._input_schema = schema["input"]
            self.openapi = openapi_document(schema, self.config.title, self.config.version)
        except ValueError as err:
            self._fail("schema failed to load", str(err))
            return
        try:
            self.check_output = compile_check(schema["output"], "output")
        except ValueError as err:
            log.warn("output schema does not compile; outputs are not checked", error=str(err))

    def start(self):
        """Imports score.py, then runs init() once. Runs on its own thread; never raises."""
        if self.phase == "failed":
            return
        started = time.monotonic()
        try:
            # On this thread, not before listening: importing pandas takes a while.
            self.decode = compile_decoder(self._input_schema)
        except ValueError as err:
            self._fail("schema failed to load", str(err))
            return
        try:
            app = load_scoring_module(self.config.app_dir)
        except LoadError as err:
            self._fail("scoring module failed to load", str(err), err.stack, durationMs=_ms(started))
            return
        log.info("scoring module loaded", file=app.path, durationMs=_ms(started))
        started = time.monotonic()
        try:
            app.init()
        except BaseException as err:  # noqa: BLE001 - whatever init() raises is its failure
            message = str(err) or type(err).__name__
            self._fail("init failed", message, traceback.format_exc(), durationMs=_ms(started))
            return
        self.app = app
        self.phase = "ready"
        log.info("init done", durationMs=_ms(started))

    def warn_output(self, value):
        if self.check_output is None:
            return
        problem = self.check_output(value)
        if problem is None:
            return
        with self._lock:
            if problem in self._output_warnings or len(self._output_warnings) >= MAX_OUTPUT_WARNINGS:
                return
            self._output_warnings.add(problem)
        log.warn("run() output does not match the output schema (answered anyway; each problem is logged once)", problem=problem)
