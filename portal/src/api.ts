/**
 * The portal's only way to the hub: the same /api/v1 routes as the CLI, with the signed-in key as a
 * bearer token. Every failure becomes an ApiError whose message a person can read. (The CLI's client,
 * client/hub-client.ts, is built on undici and Node streams; this is its browser counterpart over fetch.)
 */
import { currentKey, expireSession } from './session-store.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

const REQUEST_TIMEOUT_MS = 20_000;

export type Query = Record<string, string | number | boolean | undefined | null | readonly string[]>;

function urlOf(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null || value === '') continue;
    for (const v of Array.isArray(value) ? value : [value]) params.append(name, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'the hub refused the request',
  401: 'the API key was not accepted',
  403: 'this API key may not do that',
  404: 'not found',
  409: 'conflict',
  413: 'too large',
  429: 'the hub is busy: try again shortly',
  503: 'the hub is not ready',
};

/** The hub's error answer as an ApiError. */
async function errorOf(res: Response): Promise<ApiError> {
  let code = `http_${res.status}`;
  let message = STATUS_TEXT[res.status] ?? `the hub answered ${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === 'string') code = body.error.code;
    if (typeof body.error?.message === 'string' && body.error.message) message = body.error.message;
  } catch {
    // Not JSON (a proxy's page, say): the status text above says enough.
  }
  return new ApiError(res.status, code, message);
}

interface Request {
  query?: Query | undefined;
  body?: unknown;
  /** A key being checked (sign-in) instead of the signed-in one. */
  key?: string;
  idempotencyKey?: string;
  accept?: string;
  /** A stream's reader stops it; other requests end after REQUEST_TIMEOUT_MS. */
  signal?: AbortSignal;
}

/** The hub's answer when it is a success; every other outcome is thrown as an ApiError. */
async function send(method: string, path: string, init: Request): Promise<Response> {
  const key = init.key ?? currentKey();
  const headers: Record<string, string> = { accept: init.accept ?? 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (init.idempotencyKey) headers['idempotency-key'] = init.idempotencyKey;
  let res: Response;
  try {
    // A stalled hub or a half-open connection must end in a message, not a page that stops updating.
    res = await fetch(urlOf(path, init.query), { method, headers, body: init.body === undefined ? null : JSON.stringify(init.body), signal: init.signal ?? AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'TimeoutError') throw new ApiError(0, 'timeout', `The hub did not answer within ${REQUEST_TIMEOUT_MS / 1000} s.`);
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'The hub cannot be reached: check that it is running and this page’s address.');
  }
  if (!res.ok) {
    const error = await errorOf(res);
    // A key revoked or rotated away while the page is open: back to sign-in, with the reason.
    if (res.status === 401 && init.key === undefined) expireSession(error.message);
    throw error;
  }
  return res;
}

async function call<T>(method: string, path: string, init: Request): Promise<T> {
  const res = await send(method, path, init);
  if (res.status === 204) return undefined as T;
  try {
    return (await res.json()) as T;
  } catch {
    throw new ApiError(res.status, 'bad_response', 'The hub’s answer is not JSON: is something else answering at this address?');
  }
}

export const api = {
  get: <T>(path: string, query?: Query) => call<T>('GET', path, { query }),
  /** A text answer that streams until the work ends (a followed log), read until `signal` aborts. */
  stream: async (path: string, query: Query, signal: AbortSignal): Promise<ReadableStream<string>> => {
    const res = await send('GET', path, { query, signal, accept: 'text/plain' });
    if (!res.body) throw new ApiError(res.status, 'empty', 'The hub sent an empty answer.');
    return res.body.pipeThrough(new TextDecoderStream());
  },
  /** POST with an Idempotency-Key (one per call: what it guards is the browser's own retry of a request). */
  post: <T>(path: string, body?: unknown) => call<T>('POST', path, { body, idempotencyKey: crypto.randomUUID() }),
  put: <T>(path: string, body?: unknown) => call<T>('PUT', path, { body }),
  patch: <T>(path: string, body?: unknown) => call<T>('PATCH', path, { body }),
  /** Checks a key before it is kept (sign-in). */
  getWithKey: <T>(path: string, key: string) => call<T>('GET', path, { key }),
};

/** Path segments are names and ids from the hub, but encode them anyway. */
export const seg = (value: string | number) => encodeURIComponent(String(value));
