/**
 * Every secret a test run creates (admin keys, device tokens, service keys, API keys, rotated ones)
 * and every artefact it leaves (process output, `ps` snapshots, `docker inspect` of its containers)
 * go to one directory, so scripts/check-secret-leaks.mjs can look for each secret in every
 * artefact after the suite. The directory is EDGEML_TEST_ARTEFACTS, else one per ava run (its
 * worker processes share the parent). The ledger file holds the secrets themselves: it is the one
 * file there the scan skips, and it is readable by its owner only.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const LEDGER_FILE = 'secrets.ledger.jsonl';

export type SecretKind = 'admin-key' | 'device-token' | 'service-key' | 'api-key';

export interface LedgerEntry {
  kind: SecretKind;
  secret: string;
  /** Where it came from (a command, a helper), for the scan's report. */
  source: string;
}

let dir: string | undefined;

/** The run's artefacts directory, made on first use. */
export function artefactsDir(): string {
  dir ??= process.env.EDGEML_TEST_ARTEFACTS ?? join(tmpdir(), `edgeml-test-artefacts-${process.ppid}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** This process's record of the secrets it saw (so each is written once); the file has every test process's. */
const recorded: LedgerEntry[] = [];

/** Too short a value would be found by chance everywhere; real secrets are far longer. */
const MIN_SECRET_LENGTH = 12;

export function recordSecret(kind: SecretKind, secret: string, source: string): void {
  if (secret.length < MIN_SECRET_LENGTH || recorded.some((e) => e.secret === secret)) return;
  const entry = { kind, secret, source };
  recorded.push(entry);
  appendFileSync(join(artefactsDir(), LEDGER_FILE), `${JSON.stringify(entry)}\n`, { mode: 0o600 });
}

/** How a secret is named in reports: its start and length, never the whole of it. */
export function fingerprint(secret: string): string {
  return `${secret.slice(0, 6)}…(${secret.length} chars)`;
}

/** `text` with every given secret replaced by its fingerprint. */
export function redact(text: string, secrets: readonly string[]): string {
  return secrets.reduce((t, s) => t.split(s).join(`<secret ${fingerprint(s)}>`), text);
}

/** Appends `text` as it is to the artefact `name` (a process's log, a snapshot); returns its path. */
export function saveArtefact(name: string, text: string): string {
  const path = join(artefactsDir(), name);
  appendFileSync(path, text);
  return path;
}

/** What each kind of secret starts with, as the hub makes them. */
const KIND_OF_PREFIX: Record<string, SecretKind> = { emk_: 'api-key', ems_: 'service-key', emd_: 'device-token' };

/**
 * Secrets in a CLI answer in text mode: enroll, deploy, apikey create and the rotations print the
 * new secret alone on an indented line.
 */
export function secretsInText(text: string): Array<{ kind: SecretKind; secret: string }> {
  const found: Array<{ kind: SecretKind; secret: string }> = [];
  for (const m of text.matchAll(/^ +((em[kds]_)[\x21-\x7e]+) *$/gm)) found.push({ kind: KIND_OF_PREFIX[m[2]!]!, secret: m[1]! });
  return found;
}

/** Secrets in a CLI or REST answer: top-level `key` and `token` strings (deploy, enroll, apikey create, rotations). */
export function secretsInAnswer(answer: unknown): Array<{ kind: SecretKind; secret: string }> {
  if (typeof answer !== 'object' || answer === null) return [];
  const a = answer as Record<string, unknown>;
  const found: Array<{ kind: SecretKind; secret: string }> = [];
  if (typeof a.token === 'string') found.push({ kind: 'device-token', secret: a.token });
  if (typeof a.key === 'string') found.push({ kind: 'service' in a ? 'service-key' : 'api-key', secret: a.key });
  return found;
}
