#!/usr/bin/env python3
# A client for the edgeml service __EDGEML_SERVICE__ (written by `edgeml service client`).
# Python 3.8+, standard library only.
#
#   export __EDGEML_KEY_ENV_NAME__=...           # the service key `edgeml deploy` printed
#   edgeml hub ca > hub-ca.pem && export EDGEML_SERVICE_CA=$PWD/hub-ca.pem
#   python3 client.py input.json              # or: python3 client.py - < input.json
#
# Sample input: __EDGEML_SAMPLE__
# From your code: `from client import score; answer = score({...})`.
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request

URL = "__EDGEML_SCORE_URL__"
KEY_ENV = "__EDGEML_KEY_ENV__"
# The gateway's certificate comes from the hub's CA: with this set, that CA alone is trusted.
CA_ENV = "EDGEML_SERVICE_CA"
# A busy (429) or starting (503) service is asked again after its Retry-After, within these bounds.
MAX_TRIES = 5
MAX_WAIT_SECONDS = 30.0
DEFAULT_RETRY_AFTER = 1.0


class ScoreError(Exception):
    pass


def _retry_after(value):
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER


def _detail(body):
    try:
        error = json.loads(body)["error"]
        return "%s [%s]" % (error["message"], error["code"])
    except Exception:
        return body.decode("utf-8", "replace").strip()[:300]


def score(payload):
    """Scores one input (any JSON value) and returns the service's answer."""
    key = os.environ.get(KEY_ENV)
    if not key:
        raise ScoreError("set %s to the service key" % KEY_ENV)
    ca = os.environ.get(CA_ENV)
    context = ssl.create_default_context(cafile=ca) if ca else None
    body = json.dumps(payload).encode("utf-8")
    headers = {"content-type": "application/json", "authorization": "Bearer " + key}
    waited = 0.0
    attempt = 0
    while True:
        attempt += 1
        request = urllib.request.Request(URL, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, context=context, timeout=60) as response:
                answer = response.read()
        except urllib.error.HTTPError as err:
            detail = _detail(err.read())
            delay = _retry_after(err.headers.get("Retry-After"))
            if err.code in (429, 503) and attempt < MAX_TRIES and waited + delay <= MAX_WAIT_SECONDS:
                time.sleep(delay)
                waited += delay
                continue
            raise ScoreError("%s answered %d: %s" % (URL, err.code, detail)) from None
        except (urllib.error.URLError, OSError) as err:
            raise ScoreError("cannot reach %s: %s" % (URL, getattr(err, "reason", err))) from None
        try:
            return json.loads(answer)
        except ValueError:
            raise ScoreError("%s answered 200 with no JSON: %s" % (URL, _detail(answer))) from None


def main(argv):
    path = argv[1] if len(argv) > 1 else "-"
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
        payload = json.loads(text)
    except (OSError, ValueError) as err:
        print("error: input %s: %s" % (path, err), file=sys.stderr)
        return 2
    try:
        print(json.dumps(score(payload)))
    except ScoreError as err:
        print("error: %s" % err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
