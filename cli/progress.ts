/**
 * A byte-transfer progress bar on stderr (cli-progress). Only a person at a terminal sees one:
 * callers pass `enabled` (stderr is a TTY and not `--json`), and a disabled bar never loads
 * cli-progress at all.
 */
import type { Options, SingleBar } from 'cli-progress';
import { formatBytes } from '../shared/size.js';

export interface TransferProgress {
  /** Total bytes moved so far. */
  update(bytes: number): void;
  stop(): void;
}

const SILENT: TransferProgress = { update() {}, stop() {} };

export interface TransferProgressOptions {
  enabled: boolean;
  label: string;
  /** Bytes expected; undefined when the other side did not say. */
  total: number | undefined;
  stream: NodeJS.WritableStream;
  now?: () => number;
}

export async function createTransferProgress(opts: TransferProgressOptions): Promise<TransferProgress> {
  if (!opts.enabled) return SILENT;
  const { default: cliProgress } = await import('cli-progress');
  const now = opts.now ?? Date.now;
  const started = now();
  const known = opts.total !== undefined;
  const options: Options = {
    stream: opts.stream,
    format: known
      ? `${opts.label} [{bar}] {percentage}% | {value}/{total} | {rate} | ETA {eta_formatted}`
      : `${opts.label} {value} | {rate}`,
    formatValue: (v, _o, type) => (type === 'value' || type === 'total' ? formatBytes(v) : String(v)),
    hideCursor: true,
    barsize: 30,
  };
  const bar: SingleBar = new cliProgress.SingleBar(options, cliProgress.Presets.shades_classic);
  bar.start(opts.total ?? 0, 0, { rate: '-' });
  let stopped = false;
  return {
    update(bytes) {
      if (stopped) return;
      const seconds = (now() - started) / 1000;
      bar.update(bytes, { rate: seconds > 0 ? `${formatBytes(bytes / seconds)}/s` : '-' });
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
