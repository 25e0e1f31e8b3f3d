"""The app's schema.json: {"input": JSON Schema, "output": JSON Schema, "sample": ...}.

Validation messages match the Node runtime's (Ajv's wording, field named by path):
`features: must NOT have fewer than 4 items`, `features.3: must be number`,
`features: is required`, `extra: is not a known field`. Works with jsonschema >= 4.0 (Debian
bookworm ships 4.10).
"""
import json
import re

import jsonschema
from jsonschema.exceptions import best_match

PARTS = ("input", "output", "sample")


def read_scoring_schema(path):
    """Reads and checks schema.json; raises ValueError naming the file and the problem."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read {path}: {err}") from err
    if not isinstance(doc, dict):
        raise ValueError(f'{path}: must be a JSON object {{"input": ..., "output": ..., "sample": ...}}')
    for part in PARTS:
        if part not in doc:
            raise ValueError(f'{path}: "{part}" is required')
    return doc


def compile_check(schema, part):
    """Returns check(value) -> None when valid, else a message naming the first offending field.

    Draft-07 unless the schema's `$schema` says otherwise (2019-09, 2020-12, ...). Raises
    ValueError naming `part` if the schema itself is broken.
    """
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as err:
        raise ValueError(f'schema.json "{part}" is not a valid JSON Schema: {err.message}') from err
    format_checker = getattr(cls, "FORMAT_CHECKER", None) or jsonschema.FormatChecker()
    validator = cls(schema, format_checker=format_checker)

    def check(value):
        # The first error in the schema's own order, as Ajv reports it; inside anyOf/oneOf the
        # most relevant branch error says more than "is not valid under any of the given schemas".
        error = next(iter(validator.iter_errors(value)), None)
        if error is None:
            return None
        if error.context:
            error = best_match(error.context) or error
        return describe_error(error)

    return check


def _field(path, extra=None):
    parts = [str(p) for p in path]
    if extra is not None:
        parts.append(str(extra))
    return ".".join(parts) if parts else "(root)"


def _num(value):
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _js(value):
    return json.dumps(value, separators=(",", ":"))


def _unknown_property(schema, instance):
    props = schema.get("properties", {}) if isinstance(schema, dict) else {}
    patterns = schema.get("patternProperties", {}) if isinstance(schema, dict) else {}
    for key in instance:
        if key not in props and not any(re.search(p, key) for p in patterns):
            return key
    return None


_LIMITS = {
    "minItems": "must NOT have fewer than {} items",
    "maxItems": "must NOT have more than {} items",
    "minLength": "must NOT have fewer than {} characters",
    "maxLength": "must NOT have more than {} characters",
    "minProperties": "must NOT have fewer than {} properties",
    "maxProperties": "must NOT have more than {} properties",
    "minimum": "must be >= {}",
    "maximum": "must be <= {}",
    "exclusiveMinimum": "must be > {}",
    "exclusiveMaximum": "must be < {}",
    "multipleOf": "must be multiple of {}",
}


def describe_error(error):
    path = list(error.absolute_path)
    keyword = error.validator
    value = error.validator_value
    instance = error.instance
    if keyword == "required" and isinstance(instance, dict):
        missing = next((name for name in value if name not in instance), None)
        if missing is not None:
            return f"{_field(path, missing)}: is required"
    if keyword == "additionalProperties" and isinstance(instance, dict):
        extra = _unknown_property(error.schema, instance)
        if extra is not None:
            return f"{_field(path, extra)}: is not a known field"
    if keyword == "unevaluatedProperties" and isinstance(instance, dict):
        # jsonschema names the properties only in its message: "('zzz' was unexpected)".
        match = re.search(r"\('((?:[^'\\]|\\.)*)'", error.message)
        if match and match.group(1) in instance:
            return f"{_field(path, match.group(1))}: is not a known field"
    if keyword == "type":
        types = value if isinstance(value, list) else [value]
        return f"{_field(path)}: must be {','.join(types)}"
    if keyword in _LIMITS and not isinstance(value, bool):
        return f"{_field(path)}: {_LIMITS[keyword].format(_num(value))}"
    if keyword == "enum":
        return f"{_field(path)}: must be one of {', '.join(_js(v) for v in value)}"
    if keyword == "const":
        return f"{_field(path)}: must be {_js(value)}"
    if keyword == "pattern":
        examples = error.schema.get("examples") if isinstance(error.schema, dict) else None
        if isinstance(examples, list) and examples:
            return f"{_field(path)}: must look like {' or '.join(_js(e) for e in examples)}"
        return f'{_field(path)}: must match pattern "{value}"'
    if keyword == "format":
        return f'{_field(path)}: must match format "{value}"'
    if keyword == "uniqueItems":
        return f"{_field(path)}: must NOT have duplicate items"
    return f"{_field(path)}: {error.message}"
