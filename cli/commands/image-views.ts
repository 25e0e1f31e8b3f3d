/**
 * How images look in the CLI: the field view, the list, the progress line, failed smoke checks,
 * and the error a finished build that did not succeed turns into.
 */
import type { BuildProgress, Image, ImageStatus } from '../../shared/api/images.js';
import { EdgemlError, ErrorCodes, type ErrorCode } from '../../shared/errors.js';
import { formatBytes } from '../../shared/size.js';
import { formatList, formatTime, renderFields, renderTable, shortDigest } from '../output.js';

/** `42s`, `3m 05s`, `1h 02m`; `-` while there is no duration yet. */
export function formatDuration(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  return `${Math.floor(s / 3600)}h ${pad(Math.floor(s / 60) % 60)}m`;
}

const MAX_CURRENT = 60;

/** `building 7/18 steps: [linux/arm64 3/9] RUN npm ci`, or just the status when there is no progress. */
export function describeActivity(status: ImageStatus, progress: BuildProgress | null): string {
  if (!progress) return status;
  const current = progress.current.length > MAX_CURRENT ? `${progress.current.slice(0, MAX_CURRENT - 1)}…` : progress.current;
  return `${status} ${progress.stepsDone}/${progress.stepsTotal} steps${current ? `: ${current}` : ''}`;
}

const manifestText = (i: Image) => `${i.manifest.name}:${i.manifest.version}`;

function platformText(i: Image, platform: string): string {
  const size = i.sizes[platform];
  const check = i.checks[platform];
  return [
    i.platforms[platform] ?? '-',
    size === undefined ? '-' : formatBytes(size),
    check ? `smoke check ${check.status}${check.message ? `: ${check.message}` : ''}` : 'smoke check -',
  ].join('  ');
}

export function renderImage(i: Image): string {
  return renderFields([
    ['image', String(i.id)],
    ['status', i.attempts > 1 ? `${i.status} (attempt ${i.attempts})` : i.status],
    ['progress', i.progress ? describeActivity(i.status, i.progress) : undefined],
    ['manifest', `${manifestText(i)} (${shortDigest(i.manifest.digest)})`],
    ['runtime', i.runtime],
    ['models', formatList(i.models.map((m) => `${m.name}:${m.version}`))],
    ['ref', i.ref ?? '-'],
    ['digest', i.digest ?? '-'],
    ['tags', formatList(i.tags)],
    ...Object.keys(i.platforms).map((p) => [p, platformText(i, p)] as const),
    ['error', i.error ? `${i.error.message} [${i.error.code}]` : undefined],
    ['base image', i.baseImage],
    ['created', `${i.createdAt} by ${i.createdBy.keyName} (key ${i.createdBy.keyId})`],
    ['duration', formatDuration(i.durationMs)],
  ]);
}

export function renderImageList(images: readonly Image[]): string {
  return renderTable(
    ['ID', 'STATUS', 'MANIFEST', 'PLATFORMS', 'DIGEST', 'CREATED', 'DURATION'],
    images.map((i) => [
      String(i.id),
      i.status,
      manifestText(i),
      formatList(Object.keys(i.platforms)),
      i.digest ? shortDigest(i.digest) : '-',
      formatTime(i.createdAt),
      formatDuration(i.durationMs),
    ]),
    '(no images)',
  );
}

/** Each failed smoke check with its output: what a person needs to see why a platform failed. */
export function renderFailedChecks(i: Image): string {
  return Object.entries(i.checks)
    .filter(([, check]) => check.status === 'failed')
    .map(([platform, check]) => {
      const output = check.output.trimEnd().replace(/^/gm, '  ');
      return `${platform}: smoke check failed: ${check.message}\n${output ? `${output}\n` : ''}`;
    })
    .join('');
}

/** Why a finished build is not a success, as the error `main` reports (exit 1); undefined if it is. */
export function outcomeError(i: Image): EdgemlError | undefined {
  if (i.status === 'cancelled') return new EdgemlError(ErrorCodes.HUB_BUILD_CANCELLED, `image ${i.id} was cancelled`);
  if (i.status !== 'failed') return undefined;
  // The hub's own code, like the client does for error answers: a newer hub may use one not listed here.
  const code = (i.error?.code ?? ErrorCodes.HUB_BUILD_FAILED) as ErrorCode;
  return new EdgemlError(code, `image ${i.id} failed: ${i.error?.message ?? 'the hub gave no reason'}`);
}
