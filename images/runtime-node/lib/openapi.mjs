// GET /swagger.json: an OpenAPI 3.1 document built from schema.json. 3.1 because its schemas are
// full JSON Schema, so the user's input/output schemas (draft-07, 2019-09 or 2020-12) go in as is.

const INPUT = '#/components/schemas/ScoreInput';
const OUTPUT = '#/components/schemas/ScoreOutput';
const ERROR = '#/components/schemas/Error';
const HEALTH = '#/components/schemas/Health';

// Keys whose values are data, not subschemas: a `$ref` key inside them is not a reference.
const DATA_KEYWORDS = new Set(['const', 'enum', 'default', 'examples', 'example']);

/**
 * The schema moves from the root of its own document to `base` inside the OpenAPI document, so its
 * local references (`#/definitions/x`, `#/$defs/x`, `#`) are re-rooted there. A schema with an
 * `$id` is its own base and keeps them as they are.
 */
function rebase(schema, base) {
  const walk = (node, isRoot) => {
    if (Array.isArray(node)) return node.map((item) => walk(item, false));
    if (typeof node !== 'object' || node === null) return node;
    if (!isRoot && typeof node.$id === 'string') return node;
    const out = {};
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string' && value.startsWith('#')) out[key] = base + value.slice(1);
      else if (DATA_KEYWORDS.has(key)) out[key] = value;
      else out[key] = walk(value, false);
    }
    return out;
  };
  if (typeof schema === 'object' && schema !== null && typeof schema.$id === 'string') return schema;
  return walk(schema, true);
}

function errorResponse(description) {
  return { description, content: { 'application/json': { schema: { $ref: ERROR } } } };
}

/** @param {{input: unknown, output: unknown, sample: unknown, title: string, version: string}} opts */
export function openApiDocument({ input, output, sample, title, version }) {
  return {
    openapi: '3.1.0',
    info: {
      title,
      version,
      description:
        'edgeml scoring service. POST /score takes one JSON object (several inputs are keys of that object; ' +
        'binary data such as images goes in as base64 strings) and answers the model\'s JSON output.',
    },
    paths: {
      '/score': {
        post: {
          operationId: 'score',
          summary: 'Score one input',
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { $ref: INPUT }, example: sample } },
          },
          responses: {
            200: { description: 'The model\'s output', content: { 'application/json': { schema: { $ref: OUTPUT } } } },
            400: errorResponse('Malformed JSON (RUNTIME_E_INVALID_JSON) or input not matching the schema (RUNTIME_E_INVALID_INPUT); the message names the field'),
            413: errorResponse('Body larger than EDGEML_MAX_BODY_BYTES (RUNTIME_E_TOO_LARGE)'),
            500: errorResponse('run() failed (RUNTIME_E_RUN_FAILED); the message is the error\'s'),
            503: errorResponse('init() has not finished (RUNTIME_E_NOT_READY, with Retry-After) or failed'),
          },
        },
      },
      '/health': {
        get: {
          operationId: 'health',
          summary: 'Readiness: 200 once init() has finished',
          responses: {
            200: { description: 'Ready', content: { 'application/json': { schema: { $ref: HEALTH } } } },
            503: { description: 'Starting, or init() (or loading the app) failed', content: { 'application/json': { schema: { $ref: HEALTH } } } },
          },
        },
      },
    },
    components: {
      schemas: {
        ScoreInput: rebase(input, INPUT),
        ScoreOutput: rebase(output, OUTPUT),
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: { code: { type: 'string', examples: ['RUNTIME_E_INVALID_INPUT'] }, message: { type: 'string' } },
            },
          },
        },
        Health: {
          type: 'object',
          required: ['status'],
          properties: { status: { type: 'string', enum: ['ok', 'starting', 'failed'] }, error: { type: 'string' } },
        },
      },
    },
  };
}
