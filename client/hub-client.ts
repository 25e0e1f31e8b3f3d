/**
 * The client side of the hub's REST API over undici. Every failure becomes an EdgemlError: the
 * hub's own `{error: {code, message}}` when it sent one, a readable message with the status when it
 * did not, and CLI_HUB_UNREACHABLE when there was no usable connection at all.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { pipeline, Readable, Transform } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import { API_PREFIX } from '../shared/api/prefix.js';
import { backoffDelay, type BackoffPolicy } from '../shared/backoff.js';
import { EdgemlError, ErrorCodes, isEdgemlError, type ErrorCode } from '../shared/errors.js';
import { OPERATIONS, type OperationId, type OperationInput, type OperationResult } from './operations.js';
import { HUB_CA_HINT, inClearOffLoopback, tlsError, trustingDispatcher, type TlsPeer } from './tls.js';

export type Query = Record<string, string | number | boolean | readonly (string | number)[] | undefined>;
type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
type Body = Dispatcher.ResponseData['body'];

export interface HubClientOptions {
  /** e.g. `http://127.0.0.1:8080`; a path prefix (behind a proxy) is kept. */
  baseUrl: string;
  apiKey?: string | undefined;
  /** PEM CA certificate: the only one trusted for an https:// hub (else Node's roots). */
  ca?: string | undefined;
  /** Send the API key to a plain http:// hub off loopback (refused otherwise, before any request). */
  allowInsecureHttp?: boolean | undefined;
  /** Cancels whatever request is in flight (the CLI's Ctrl-C). */
  signal?: AbortSignal | undefined;
  /** How long a POST (or a request sent with `retry`) is retried on connection failures (default 30 s), and how it backs off. */
  retry?: { forMs: number; backoff: BackoffPolicy } | undefined;
  /** Told of each retry, in one line (the CLI prints it on stderr). */
  onRetry?: ((line: string) => void) | undefined;
}

const DEFAULT_RETRY = { forMs: 30_000, backoff: { initialMs: 250, maxMs: 4000, factor: 2 } };

export interface Download {
  headers: Record<string, string | string[] | undefined>;
  /** From content-length; undefined when the hub streamed without one. */
  length: number | undefined;
  /** Fails with CLI_HUB_UNREACHABLE if the connection drops part-way. */
  body: Readable;
}

/** A request body sent as it is read (a file, a tar stream); a function is opened again for each retry. */
export interface Upload<T extends string = string> {
  contentType: T;
  source: Readable | (() => Readable);
  length?: number | undefined;
  onProgress?: ((bytes: number) => void) | undefined;
}

/** `retry`: a JSON operation other than a POST is retried as a POST is, for routes that honour Idempotency-Key (see `json`). */
export interface CallOptions {
  retry?: boolean | undefined;
}

/** An operation's input: omitted when it needs none. */
type CallArgs<K extends OperationId> = Record<string, never> extends OperationInput<K>
  ? [input?: OperationInput<K>, options?: CallOptions]
  : [input: OperationInput<K>, options?: CallOptions];

/** `/api/v1/devices/{id}` with `{id: 'gw 1'}` → `/api/v1/devices/gw%201`. */
export function operationPath(template: string, params: Record<string, string | number> = {}): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`${template}: no value for {${name}}`);
    return encodeURIComponent(String(value));
  });
}

/** `/api/v1/models/resnet50/versions/%40production`: every segment encoded. */
export function apiPath(...segments: readonly (string | number)[]): string {
  return `${API_PREFIX}/${segments.map((s) => encodeURIComponent(String(s))).join('/')}`;
}

/** Socket-level failures: the hub is down, unknown, or went away mid-request. */
const TRANSPORT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

const CANNOT_REACH = 'cannot reach';
const CONNECTION_LOST = 'lost the connection to';

/** Error bodies are small; a proxy's HTML page is cut rather than printed whole. */
const MAX_ERROR_TEXT = 300;
/** Enough for any hub error; a misbehaving server cannot make the CLI buffer more. */
const MAX_ERROR_BODY = 64 * 1024;

/** The start of an error answer; a body that breaks off part-way still leaves the status to report. */
async function errorText(body: Body): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= MAX_ERROR_BODY) break;
    }
  } catch {
    // keep what arrived
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** What a status means when the answer did not say (a proxy's error page, a crash). */
const STATUS_CODE_FALLBACK: Record<number, ErrorCode> = {
  400: ErrorCodes.HUB_INVALID_REQUEST,
  401: ErrorCodes.HUB_UNAUTHENTICATED,
  403: ErrorCodes.HUB_FORBIDDEN,
  404: ErrorCodes.HUB_NOT_FOUND,
  409: ErrorCodes.HUB_CONFLICT,
  413: ErrorCodes.HUB_PAYLOAD_TOO_LARGE,
  415: ErrorCodes.HUB_UNSUPPORTED_MEDIA_TYPE,
};

function errorCodeOf(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: { code?: unknown }; errors?: { code?: unknown }[] } | null;
  // Happy-eyeballs connects fail with an AggregateError whose members carry the codes.
  const code = e?.code ?? e?.cause?.code ?? e?.errors?.[0]?.code;
  return typeof code === 'string' ? code : undefined;
}

export class HubClient {
  private readonly base: string;
  private readonly apiKey: string | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly retry: { forMs: number; backoff: BackoffPolicy };
  private readonly onRetry: ((line: string) => void) | undefined;
  private readonly dispatcher: Promise<Dispatcher | undefined> | undefined;
  private readonly peer: TlsPeer;
  /** Why no request may be sent, if the key would cross the network unencrypted. */
  private readonly refusal: EdgemlError | undefined;

  constructor(opts: HubClientOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, '');
    this.peer = {
      name: 'the hub',
      url: this.base,
      caHint: HUB_CA_HINT,
      nameHint: 'use a name the certificate carries in --hub, or start the hub with --tls-san NAME',
    };
    this.apiKey = opts.apiKey;
    this.refusal =
      this.apiKey && !opts.allowInsecureHttp && inClearOffLoopback(new URL(this.base))
        ? new EdgemlError(
            ErrorCodes.CLI_INSECURE_HUB,
            `the hub at ${this.base} is plain http on a non-loopback address: the API key would cross the network unencrypted; use https:// with --ca FILE (\`edgeml hub ca\` prints it), or pass --allow-insecure-http`,
          )
        : undefined;
    this.dispatcher = opts.ca === undefined ? undefined : trustingDispatcher(opts.ca);
    this.signal = opts.signal;
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.onRetry = opts.onRetry;
  }

  /**
   * One operation of the hub's OpenAPI document, by its operationId, typed from the document
   * (client/operations.ts): `call('getDevice', { params: { id } })` resolves to a Device.
   */
  async call<K extends OperationId>(id: K, ...[input, options]: CallArgs<K>): Promise<OperationResult<K>> {
    const op = OPERATIONS[id];
    const given = (input ?? {}) as { params?: Record<string, string | number>; query?: Query; body?: unknown; upload?: Upload };
    const path = operationPath(op.path, given.params);
    const result: unknown =
      op.response === 'download'
        ? await this.download(path, given.query)
        : op.body === 'upload'
          ? await this.upload(path, given.query ?? {}, given.upload!.contentType, given.upload!.source, given.upload!.length, given.upload!.onProgress)
          : await this.json(op.method, path, { query: given.query, body: given.body, retry: options?.retry });
    return result as OperationResult<K>;
  }

  /**
   * A JSON request; resolves to the parsed answer, or undefined for 204. A POST is retried (see
   * `retrying`); another method only with `retry`, for routes that honour Idempotency-Key (a
   * retried DELETE elsewhere would find nothing left to delete and answer 404).
   */
  async json<T>(method: Method, path: string, opts: { query?: Query; body?: unknown; retry?: boolean } = {}): Promise<T> {
    const hasBody = opts.body !== undefined;
    const once = async (headers: Record<string, string>) => {
      const res = await this.send(method, path, opts.query, {
        body: hasBody ? JSON.stringify(opts.body) : undefined,
        headers: { ...headers, ...(hasBody ? { 'content-type': 'application/json' } : {}) },
      });
      return this.answer<T>(res);
    };
    return (opts.retry ?? method === 'POST') ? this.retrying(once) : once({});
  }

  /**
   * A request that fails for want of a connection (refused, reset, closed before the answer) is sent
   * again, with capped backoff for a bounded time, under one Idempotency-Key: the hub answers a
   * retry of a create (or delete) that did commit with its outcome instead of doing it twice.
   */
  private async retrying<T>(attempt: (headers: Record<string, string>) => Promise<T>): Promise<T> {
    const headers = { 'idempotency-key': randomUUID() };
    const deadline = Date.now() + this.retry.forMs;
    for (let n = 0; ; n++) {
      try {
        return await attempt(headers);
      } catch (err) {
        const delay = backoffDelay(n, this.retry.backoff);
        if (!isEdgemlError(err, ErrorCodes.CLI_HUB_UNREACHABLE) || this.signal?.aborted || Date.now() + delay > deadline) throw err;
        this.onRetry?.(`${err.message}; trying again in ${(delay / 1000).toFixed(1)} s (the same request: the hub will not do it twice)`);
        await sleep(delay, undefined, { signal: this.signal });
      }
    }
  }

  /**
   * Streams `source` as the request body. If the hub answers before it has read everything (413, 401,
   * a bad query), its answer is what the caller gets; the rest of `body` is discarded. Given as a
   * function that opens the stream, the upload is retried as other POSTs are, each time from the start.
   */
  async upload<T>(
    path: string,
    query: Query,
    contentType: string,
    source: Readable | (() => Readable),
    length: number | undefined,
    onProgress?: (bytes: number) => void,
  ): Promise<T> {
    if (typeof source !== 'function') return this.uploadOnce(path, query, contentType, source, length, onProgress, {});
    return this.retrying((headers) => this.uploadOnce(path, query, contentType, source(), length, onProgress, headers));
  }

  private async uploadOnce<T>(
    path: string,
    query: Query,
    contentType: string,
    body: Readable,
    length: number | undefined,
    onProgress: ((bytes: number) => void) | undefined,
    extraHeaders: Record<string, string>,
  ): Promise<T> {
    let sent = 0;
    const counted = new Transform({
      transform(chunk: Buffer, _enc, done) {
        sent += chunk.length;
        onProgress?.(sent);
        done(null, chunk);
      },
    });
    // pipeline carries a failure of `body` (an unreadable file, a refused directory) to `counted`,
    // where undici sees it; its callback has nothing to add because the request reports it.
    pipeline(body, counted, () => {});
    try {
      const headers: Record<string, string> = { ...extraHeaders, 'content-type': contentType };
      if (length !== undefined) headers['content-length'] = String(length);
      return await this.answer<T>(await this.send('POST', path, query, { body: counted, headers }));
    } finally {
      // Stops reading a file (or packing a directory) the hub has already refused.
      body.destroy();
      counted.destroy();
    }
  }

  async download(path: string, query?: Query): Promise<Download> {
    const res = await this.send('GET', path, query, { headers: { accept: '*/*' } });
    if (res.statusCode < 200 || res.statusCode >= 300) throw await this.failure(res.statusCode, res.body);
    const header = res.headers['content-length'];
    const length = typeof header === 'string' && /^\d+$/.test(header) ? Number(header) : undefined;
    return { headers: res.headers, length, body: Readable.from(this.mapStreamErrors(res.body)) };
  }

  private async send(
    method: Method,
    path: string,
    query: Query | undefined,
    opts: { body?: string | Readable | undefined; headers: Record<string, string> },
  ): Promise<Dispatcher.ResponseData> {
    if (this.refusal) throw this.refusal;
    const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    // Loaded on first use: `edgeml --version` and `--help` should not pay for an HTTP client.
    const { request } = await import('undici');
    try {
      const dispatcher = await this.dispatcher;
      return await request(this.url(path, query), { method, headers, body: opts.body, signal: this.signal, ...(dispatcher ? { dispatcher } : {}) });
    } catch (err) {
      throw await this.transportError(err, CANNOT_REACH);
    }
  }

  private url(path: string, query: Query | undefined): string {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) params.append(key, String(v));
    }
    const qs = params.toString();
    return `${this.base}${path}${qs ? `?${qs}` : ''}`;
  }

  private async answer<T>(res: Dispatcher.ResponseData): Promise<T> {
    if (res.statusCode < 200 || res.statusCode >= 300) throw await this.failure(res.statusCode, res.body);
    if (res.statusCode === 204) {
      await res.body.dump();
      return undefined as T;
    }
    const text = await this.readText(res.body);
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new EdgemlError(ErrorCodes.INTERNAL, `the hub at ${this.base} sent an answer that is not JSON (status ${res.statusCode})`, { cause: err });
    }
  }

  private async failure(status: number, body: Body): Promise<EdgemlError> {
    const text = await errorText(body);
    let code: ErrorCode | undefined;
    let message: string | undefined;
    try {
      const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
      if (typeof parsed.error?.code === 'string' && typeof parsed.error.message === 'string') {
        // The hub's codes are the shared ErrorCodes; a newer hub may send one this CLI does not list.
        code = parsed.error.code as ErrorCode;
        message = parsed.error.message;
      }
    } catch {
      // not JSON: described below
    }
    if (message === undefined) {
      const excerpt = text.replace(/\s+/g, ' ').trim().slice(0, MAX_ERROR_TEXT);
      message = `the hub at ${this.base} answered ${status} ${STATUS_CODES[status] ?? ''}`.trimEnd() + (excerpt ? `: ${excerpt}` : '');
    }
    if (status === 401 && !this.apiKey) {
      message += " (no API key: pass --api-key-file FILE or set EDGEML_API_KEY_FILE or EDGEML_API_KEY; the hub's admin key is in DATA/admin.key)";
    }
    return new EdgemlError(code ?? STATUS_CODE_FALLBACK[status] ?? ErrorCodes.INTERNAL, message, {
      httpStatus: status,
      retryable: status >= 500 || status === 429,
      details: { status },
    });
  }

  private async readText(body: Body): Promise<string> {
    try {
      return await body.text();
    } catch (err) {
      throw await this.transportError(err, CONNECTION_LOST);
    }
  }

  private async *mapStreamErrors(body: Body): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of body) yield chunk as Buffer;
    } catch (err) {
      throw await this.transportError(err, CONNECTION_LOST);
    }
  }

  /** A TLS failure becomes CLI_E_TLS, a socket failure CLI_HUB_UNREACHABLE; anything else (an abort, a local read error) passes. */
  private async transportError(err: unknown, what: string): Promise<unknown> {
    const tls = await tlsError(err, this.peer);
    if (tls) return tls;
    const code = errorCodeOf(err);
    if (!code || !TRANSPORT_CODES.has(code)) return err;
    const hint = what === CANNOT_REACH ? ' (is `edgeml hub start` running? set --hub or EDGEML_HUB)' : '';
    return new EdgemlError(ErrorCodes.CLI_HUB_UNREACHABLE, `${what} the hub at ${this.base}: ${code}${hint}`, { cause: err, retryable: true });
  }
}
