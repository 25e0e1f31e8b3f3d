/**
 * What the hub's OpenAPI document promises generated clients, checked by the unit test (document
 * built in-process) and the integration test (fetched from a running hub): each returns the
 * operations that break it, so a failure names them.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import SwaggerParser from '@apidevtools/swagger-parser';

type Json = Record<string, any>;
const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete'];
/** camelCase, verb first. */
export const OPERATION_ID = /^(get|head|list|create|update|delete|set|register|enroll|revoke|rotate|pause|resume|abort|build|cancel|start|stop|export|follow|stream)[A-Z][A-Za-z0-9]*$/;

export function operations(document: Json): Array<{ at: string; op: Json }> {
  return Object.entries(document.paths as Json).flatMap(([path, ops]) =>
    METHODS.filter((m) => ops[m]).map((m) => ({ at: `${m.toUpperCase()} ${path}`, op: ops[m] as Json })),
  );
}

export function badOperationIds(document: Json): string[] {
  const seen = new Map<string, string>();
  const bad: string[] = [];
  for (const { at, op } of operations(document)) {
    const id = op.operationId;
    if (typeof id !== 'string' || !OPERATION_ID.test(id)) bad.push(`${at}: operationId ${JSON.stringify(id)}`);
    else if (seen.has(id)) bad.push(`${at}: operationId ${id} also on ${seen.get(id)}`);
    else seen.set(id, at);
  }
  return bad;
}

/** A JSON body is a component: `$ref`, or `allOf: [$ref]` where a use adds `nullable` or a description. */
function isComponentRef(schema: Json | undefined): boolean {
  const ref = schema?.$ref ?? (schema?.allOf?.length === 1 ? schema.allOf[0].$ref : undefined);
  return typeof ref === 'string' && ref.startsWith('#/components/schemas/');
}

export function inlineJsonBodies(document: Json): string[] {
  const bad: string[] = [];
  for (const { at, op } of operations(document)) {
    const bodies: Array<[string, Json | undefined]> = [['request', op.requestBody?.content?.['application/json']]];
    for (const [code, r] of Object.entries((op.responses ?? {}) as Json)) bodies.push([code, r.content?.['application/json']]);
    for (const [which, media] of bodies) if (media && !isComponentRef(media.schema)) bad.push(`${at} ${which}`);
  }
  return bad;
}

export function securityProblems(document: Json): string[] {
  const bad: string[] = [];
  for (const { at, op } of operations(document)) {
    if (!Array.isArray(op.security)) bad.push(`${at}: no security`);
    else if (op.security.length > 0 && !(op.responses?.['401'] && op.responses?.['403'])) bad.push(`${at}: scoped, without 401 and 403`);
  }
  return bad;
}

/** swagger-parser's validate(): resolves to undefined, or the error message. */
export async function swaggerParserProblem(document: Json): Promise<string | undefined> {
  try {
    await SwaggerParser.validate(structuredClone(document) as never);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** `redocly lint --format=json` on the document: its error count and the errors. */
export async function redoclyErrors(document: Json, dir: string): Promise<{ errors: number; problems: string[] }> {
  const file = join(dir, 'openapi.json');
  await writeFile(file, JSON.stringify(document));
  const cli = join(process.cwd(), 'node_modules', '.bin', 'redocly');
  // Exits 1 when it finds errors; the JSON report is on stdout either way.
  const { stdout } = await promisify(execFile)(cli, ['lint', file, '--format=json'], { maxBuffer: 16 * 1024 * 1024, env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' } }).catch(
    (err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }),
  );
  const report = JSON.parse(stdout) as { totals: { errors: number }; problems: Array<{ severity: string; ruleId: string; message: string; location: Array<{ pointer: string }> }> };
  return {
    errors: report.totals.errors,
    problems: report.problems.filter((p) => p.severity === 'error').map((p) => `${p.ruleId} ${p.location[0]?.pointer}: ${p.message}`),
  };
}
