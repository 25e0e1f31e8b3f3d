// Turns validated input into what run() works with, as the input schema says: a base64 string whose
// schema has `contentEncoding: "base64"` and an `image/…` `contentMediaType`, or says
// `"x-edgeml-decode": "bytes"`, becomes a Buffer; `"x-edgeml-decode": "none"` keeps the string.
// ("ndarray" and "dataframe" are for score.py; Node passes those values as JSON.) Follows
// properties, additionalProperties, items, prefixItems, allOf and local $refs; not anyOf/oneOf.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const MAX_REF_HOPS = 32;

export class DecodeError extends Error {}

function pointer(root, ref) {
  if (ref === '#') return root;
  if (!ref.startsWith('#/')) return undefined;
  return ref.slice(2).split('/').reduce((at, key) => (at && typeof at === 'object' ? at[key.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined), root);
}

function deref(root, schema) {
  for (let hops = 0; schema && typeof schema === 'object' && typeof schema.$ref === 'string' && hops < MAX_REF_HOPS; hops += 1) {
    schema = pointer(root, schema.$ref);
  }
  return schema && typeof schema === 'object' ? schema : undefined;
}

export function wantsBytes(schema) {
  const mode = schema['x-edgeml-decode'];
  if (mode !== undefined) return mode === 'bytes';
  return schema.contentEncoding === 'base64' && typeof schema.contentMediaType === 'string' && schema.contentMediaType.startsWith('image/');
}

const field = (path) => (path.length ? path.join('.') : '(root)');

/** Returns `decode(input)` (in place, and returned), or undefined when the schema asks for nothing. */
export function compileDecoder(root) {
  const text = JSON.stringify(root ?? null);
  if (!text.includes('"contentEncoding"') && !text.includes('"x-edgeml-decode"')) return undefined;

  function walk(value, schemaRef, path) {
    const schema = deref(root, schemaRef);
    if (!schema) return value;
    if (typeof value === 'string' && wantsBytes(schema)) {
      if (!BASE64.test(value)) throw new DecodeError(`${field(path)}: must be base64`);
      return Buffer.from(value, 'base64');
    }
    for (const sub of Array.isArray(schema.allOf) ? schema.allOf : []) value = walk(value, sub, path);
    if (Array.isArray(value)) {
      const prefix = Array.isArray(schema.prefixItems) ? schema.prefixItems : Array.isArray(schema.items) ? schema.items : [];
      const rest = Array.isArray(schema.items) ? schema.additionalItems : schema.items;
      for (let i = 0; i < value.length; i += 1) value[i] = walk(value[i], i < prefix.length ? prefix[i] : rest, [...path, i]);
    } else if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
      const props = schema.properties && typeof schema.properties === 'object' ? schema.properties : {};
      for (const key of Object.keys(value)) {
        const sub = Object.prototype.hasOwnProperty.call(props, key) ? props[key] : schema.additionalProperties;
        value[key] = walk(value[key], sub, [...path, key]);
      }
    }
    return value;
  }
  return (input) => walk(input, root, []);
}
