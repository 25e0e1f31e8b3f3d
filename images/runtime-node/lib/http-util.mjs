// Small HTTP helpers: bounded body reading and JSON answers.

// Past the limit the rest of a body is read and dropped (so the client gets to read the 413 instead
// of a reset), but only up to this much; beyond it the connection is closed at once.
const DISCARD_CAP = 16 * 1024 * 1024;

/**
 * Reads the request body. Resolves `{body: Buffer}`, or `{tooLarge: true, close}` once more than
 * `limit` bytes arrive (`close`: the rest was not read, so the connection must not be reused).
 */
export function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit + DISCARD_CAP) {
      resolve({ tooLarge: true, close: true });
      return;
    }
    const chunks = [];
    let received = 0;
    let settled = false;
    const settle = (value) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      resolve(value);
    };
    const onData = (chunk) => {
      received += chunk.length;
      if (received <= limit) chunks.push(chunk);
      else if (chunks.length) chunks.length = 0;
      if (received > limit + DISCARD_CAP) {
        req.pause();
        settle({ tooLarge: true, close: true });
      }
    };
    const onEnd = () => settle(received > limit ? { tooLarge: true, close: false } : { body: Buffer.concat(chunks) });
    const onError = (err) => {
      if (settled) return;
      settled = true;
      reject(Object.assign(err, { clientAborted: true }));
    };
    const onClose = () => {
      if (!req.complete) onError(new Error('the client closed the connection before sending the whole body'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/** Sends `value` as JSON. `headers` may add e.g. Retry-After or Connection: close. */
export function sendJson(res, status, value, headers = {}) {
  const text = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

export function errorBody(code, message) {
  return { error: { code, message } };
}
