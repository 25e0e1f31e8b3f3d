"""GET /swagger.json: an OpenAPI 3.1 document built from schema.json (same as the Node runtime's).

3.1 because its schemas are full JSON Schema, so the user's input/output schemas go in as they are.
"""

INPUT = "#/components/schemas/ScoreInput"
OUTPUT = "#/components/schemas/ScoreOutput"
ERROR = "#/components/schemas/Error"
HEALTH = "#/components/schemas/Health"

# Keys whose values are data, not subschemas: a "$ref" key inside them is not a reference.
_DATA_KEYWORDS = {"const", "enum", "default", "examples", "example"}


def _rebase(schema, base):
    """Re-roots the schema's local references (#/definitions/x, #) at `base`; an $id keeps its own."""

    def walk(node, is_root):
        if isinstance(node, list):
            return [walk(item, False) for item in node]
        if not isinstance(node, dict):
            return node
        if not is_root and isinstance(node.get("$id"), str):
            return node
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#"):
                out[key] = base + value[1:]
            elif key in _DATA_KEYWORDS:
                out[key] = value
            else:
                out[key] = walk(value, False)
        return out

    if isinstance(schema, dict) and isinstance(schema.get("$id"), str):
        return schema
    return walk(schema, True)


def _error_response(description):
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ERROR}}}}


def openapi_document(schema, title, version):
    health = {"application/json": {"schema": {"$ref": HEALTH}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "edgeml scoring service. POST /score takes one JSON object (several inputs are keys of "
            "that object; binary data such as images goes in as base64 strings) and answers the model's JSON output.",
        },
        "paths": {
            "/score": {
                "post": {
                    "operationId": "score",
                    "summary": "Score one input",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": INPUT}, "example": schema["sample"]}},
                    },
                    "responses": {
                        "200": {"description": "The model's output", "content": {"application/json": {"schema": {"$ref": OUTPUT}}}},
                        "400": _error_response(
                            "Malformed JSON (RUNTIME_E_INVALID_JSON) or input not matching the schema "
                            "(RUNTIME_E_INVALID_INPUT); the message names the field"
                        ),
                        "413": _error_response("Body larger than EDGEML_MAX_BODY_BYTES (RUNTIME_E_TOO_LARGE)"),
                        "500": _error_response("run() failed (RUNTIME_E_RUN_FAILED); the message is the error's"),
                        "503": _error_response("init() has not finished (RUNTIME_E_NOT_READY, with Retry-After) or failed"),
                    },
                }
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Readiness: 200 once init() has finished",
                    "responses": {
                        "200": {"description": "Ready", "content": health},
                        "503": {"description": "Starting, or init() (or loading the app) failed", "content": health},
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "ScoreInput": _rebase(schema["input"], INPUT),
                "ScoreOutput": _rebase(schema["output"], OUTPUT),
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string", "examples": ["RUNTIME_E_INVALID_INPUT"]},
                                "message": {"type": "string"},
                            },
                        }
                    },
                },
                "Health": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"type": "string", "enum": ["ok", "starting", "failed"]}, "error": {"type": "string"}},
                },
            }
        },
    }
