"""Turns validated input into what run() works with, as the input schema says, with the keyword
`x-edgeml-decode`:

- "bytes" (or no keyword, `contentEncoding: "base64"` and an `image/...` `contentMediaType`): the
  base64 string becomes `bytes`;
- "ndarray": the value becomes `numpy.asarray(value, dtype=x-edgeml-dtype)`;
- "dataframe": the value (a list of records or a dict of columns) becomes
  `pandas.DataFrame(value, dtype=x-edgeml-dtype)`;
- "none": left as JSON.

numpy and pandas are imported only when the schema asks for them. Follows properties,
additionalProperties, items, prefixItems, allOf and local $refs; not anyOf/oneOf.
"""
import base64
import binascii
import importlib
import json
import re

MODES = ("bytes", "ndarray", "dataframe", "none")
_PACKAGES = {"ndarray": ("numpy", "python3-numpy"), "dataframe": ("pandas", "python3-pandas")}
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
MAX_REF_HOPS = 32


class DecodeError(ValueError):
    pass


def _pointer(root, ref):
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        return None
    at = root
    for key in ref[2:].split("/"):
        key = key.replace("~1", "/").replace("~0", "~")
        if isinstance(at, dict):
            at = at.get(key)
        elif isinstance(at, list) and key.isdigit() and int(key) < len(at):
            at = at[int(key)]
        else:
            return None
    return at


def _modes(node, found):
    if isinstance(node, dict):
        mode = node.get("x-edgeml-decode")
        if mode is not None:
            found.add(mode)
        for value in node.values():
            _modes(value, found)
    elif isinstance(node, list):
        for value in node:
            _modes(value, found)
    return found


def _field(path):
    return ".".join(str(p) for p in path) if path else "(root)"


def compile_decoder(root):
    """Returns decode(value), or None when the schema asks for nothing. Raises ValueError when the
    schema names an unknown mode or a package that is not installed."""
    text = json.dumps(root)
    if '"contentEncoding"' not in text and '"x-edgeml-decode"' not in text:
        return None
    libs = {}
    for mode in sorted(_modes(root, set())):
        if mode not in MODES:
            raise ValueError(f'schema.json "input": "x-edgeml-decode" must be one of {", ".join(MODES)}, not {mode!r}')
        if mode in _PACKAGES:
            package, debian = _PACKAGES[mode]
            try:
                libs[mode] = importlib.import_module(package)
            except ImportError as err:
                raise ValueError(f'schema.json asks for "x-edgeml-decode": "{mode}", which needs the Python package {package}: {err} (install {debian}, or list {package} in requirements.txt)') from err

    def deref(schema):
        hops = 0
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and hops < MAX_REF_HOPS:
            schema = _pointer(root, schema["$ref"])
            hops += 1
        return schema if isinstance(schema, dict) else None

    def wants_bytes(schema):
        mode = schema.get("x-edgeml-decode")
        if mode is not None:
            return mode == "bytes"
        media = schema.get("contentMediaType")
        return schema.get("contentEncoding") == "base64" and isinstance(media, str) and media.startswith("image/")

    def walk(value, schema_ref, path):
        schema = deref(schema_ref)
        if schema is None:
            return value
        mode = schema.get("x-edgeml-decode")
        if isinstance(value, str) and wants_bytes(schema):
            if not _BASE64.fullmatch(value):
                raise DecodeError(f"{_field(path)}: must be base64")
            try:
                return base64.b64decode(value, validate=True)
            except binascii.Error as err:
                raise DecodeError(f"{_field(path)}: must be base64") from err
        if mode == "ndarray":
            try:
                return libs["ndarray"].asarray(value, dtype=schema.get("x-edgeml-dtype"))
            except (TypeError, ValueError) as err:
                raise DecodeError(f"{_field(path)}: cannot be made a numpy array: {err}") from err
        if mode == "dataframe":
            try:
                return libs["dataframe"].DataFrame(value, dtype=schema.get("x-edgeml-dtype"))
            except (TypeError, ValueError) as err:
                raise DecodeError(f"{_field(path)}: cannot be made a pandas DataFrame: {err}") from err
        for sub in schema.get("allOf") or []:
            value = walk(value, sub, path)
        if isinstance(value, list):
            items = schema.get("items")
            prefix = schema.get("prefixItems") or (items if isinstance(items, list) else [])
            rest = schema.get("additionalItems") if isinstance(items, list) else items
            return [walk(v, prefix[i] if i < len(prefix) else rest, path + [i]) for i, v in enumerate(value)]
        if isinstance(value, dict):
            props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
            extra = schema.get("additionalProperties")
            return {k: walk(v, props[k] if k in props else extra, path + [k]) for k, v in value.items()}
        return value

    return lambda value: walk(value, root, [])
