#!/usr/bin/env python3
"""edgeml scoring runtime for Python (3.11, standard library + jsonschema; Debian bookworm's
python3). Serves the user's score.py on $HOST:$PORT; see images/README.md, "Runtimes".

    EDGEML_APP_DIR=/opt/edgeml/app EDGEML_MODEL_DIR=/opt/edgeml/models PORT=8080 python3 server.py
"""
import os
import platform
import signal
import sys
import threading
import time
from dataclasses import dataclass

from edgeml_runtime import log
from edgeml_runtime.handler import server_class
from edgeml_runtime.service import Service

ACCEPT_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    app_dir: str
    model_dir: str
    max_body_bytes: int
    drain_seconds: float
    title: str
    version: str


def read_config(env):
    def number(name, fallback, minimum, maximum=2**53 - 1, integer=True):
        raw = env.get(name, "")
        if raw == "":
            return fallback
        try:
            value = int(raw) if integer else float(raw)
        except ValueError:
            value = None
        if value is None or value != value or not minimum <= value <= maximum:
            kind = "an integer" if integer else "a number"
            raise ValueError(f"{name}={raw!r}: must be {kind} from {minimum} to {maximum}")
        return int(value) if isinstance(value, float) and value.is_integer() else value

    return Config(
        host=env.get("HOST") or "127.0.0.1",
        port=number("PORT", 8080, 0, 65535),
        app_dir=os.path.abspath(env.get("EDGEML_APP_DIR") or "/opt/edgeml/app"),
        model_dir=os.path.abspath(env.get("EDGEML_MODEL_DIR") or "/opt/edgeml/models"),
        max_body_bytes=number("EDGEML_MAX_BODY_BYTES", 10 * 1024 * 1024, 1),
        drain_seconds=number("EDGEML_DRAIN_SECONDS", 30.0, 0, integer=False),
        title=env.get("EDGEML_APP_NAME") or "edgeml scoring service",
        version=env.get("EDGEML_APP_VERSION") or "0.0.0",
    )


def exit_now(code):
    sys.stdout.flush()
    os._exit(code)  # daemon threads (and any the user's code started) must not hold the exit


def drain(server, signame, seconds):
    """No new connections; requests in flight finish (bounded by `seconds`); idle keep-alive
    connections are closed. Exits 0, or 1 if requests were still running at the deadline."""
    started = time.monotonic()
    server.socket.close()
    log.info("shutting down: no new connections, draining requests in flight", signal=signame, inFlight=server.in_flight, drainSeconds=seconds)
    deadline = started + seconds
    with server.cond:
        server.draining = True
        while server.connections:
            server.close_idle()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            server.cond.wait(min(remaining, 0.1))
        in_flight = server.in_flight
    if in_flight:
        log.error("drain timed out; closing remaining connections", inFlight=in_flight, drainSeconds=seconds)
        exit_now(1)
    log.info("stopped", drainedMs=round((time.monotonic() - started) * 1000))
    exit_now(0)


def main():
    try:
        config = read_config(os.environ)
    except ValueError as err:
        log.fatal("invalid configuration", error=str(err))
        exit_now(2)
    # The user's init() reads its models from here, defaults included.
    os.environ["EDGEML_APP_DIR"] = config.app_dir
    os.environ["EDGEML_MODEL_DIR"] = config.model_dir

    log.info("starting", runtime="python", python=platform.python_version(), pid=os.getpid(), appDir=config.app_dir, modelDir=config.model_dir)
    service = Service(config)
    service.load_schema()
    try:
        server = server_class(config.host)((config.host, config.port), service)
    except OSError as err:
        log.fatal("cannot listen", host=config.host, port=config.port, error=str(err))
        exit_now(1)
    port = server.server_address[1]
    host_in_url = f"[{config.host}]" if ":" in config.host else config.host
    log.info("listening", host=config.host, port=port, url=f"http://{host_in_url}:{port}")
    threading.Thread(target=service.start, name="init", daemon=True).start()

    stop = []

    def on_signal(signum, _frame):
        name = signal.Signals(signum).name
        if stop:
            # A stop retried by the orchestrator (an agent restarted mid-stop) must not cut the
            # drain short; the drain has its own bound. Ctrl-C twice is a person who wants out now.
            if name == "SIGTERM":
                log.info("SIGTERM again: still draining", inFlight=server.in_flight)
                return
            log.warn("second signal: exiting without waiting", signal=name, inFlight=server.in_flight)
            exit_now(1)
        stop.append(name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # Accept on this (the main) thread, where signal handlers run: the loop notices a signal
    # within ACCEPT_POLL_SECONDS. Each connection gets its own thread.
    server.timeout = ACCEPT_POLL_SECONDS
    while not stop:
        server.handle_request()
    drain(server, stop[0], config.drain_seconds)


if __name__ == "__main__":
    main()
