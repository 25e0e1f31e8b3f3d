/**
 * The Prometheus text exposition format, version 0.0.4: `# HELP` and `# TYPE` once per family,
 * then one line per series. Label values and help texts are escaped as the format requires, and a
 * family that would repeat a series (same name and labels) is refused: Prometheus rejects the whole
 * scrape over one duplicate.
 */
import type { LatencyHistogram } from '../../shared/latency-histogram.js';

export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type Labels = Record<string, string>;

export interface Sample {
  /** Appended to the family name: `_bucket`, `_sum`, `_count` for histograms. */
  suffix?: string;
  labels?: Labels;
  value: number;
}

export interface MetricFamily {
  /** For a counter, the whole name, `_total` included (the 0.0.4 format names it so in TYPE). */
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const escapeHelp = (text: string) => text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabelValue = (text: string) => text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function formatLabels(labels: Labels | undefined): string {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) return '';
  for (const [name] of entries) if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new Error(`invalid Prometheus label name ${JSON.stringify(name)}`);
  return `{${entries.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(',')}}`;
}

export function renderExposition(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  const seen = new Set<string>();
  for (const f of families) {
    if (!METRIC_NAME.test(f.name)) throw new Error(`invalid Prometheus metric name ${JSON.stringify(f.name)}`);
    if (seen.has(f.name)) throw new Error(`metric family ${f.name} is rendered twice`);
    seen.add(f.name);
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    const series = new Set<string>();
    for (const s of f.samples) {
      const line = `${f.name}${s.suffix ?? ''}${formatLabels(s.labels)}`;
      if (series.has(line)) throw new Error(`duplicate Prometheus series ${line}`);
      series.add(line);
      lines.push(`${line} ${formatValue(s.value)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/**
 * The samples of a Prometheus histogram from a fixed-bucket one: cumulative `le` buckets ending
 * with `+Inf`, `_sum` and `_count`. The bounds and the sum are divided by `divisor` (1000: ms to
 * seconds, Prometheus' base unit; a division keeps `0.005` from becoming `0.005000000000000001`).
 */
export function histogramSamples(labels: Labels, h: LatencyHistogram, divisor: number): Sample[] {
  const samples: Sample[] = [];
  let cumulative = 0;
  h.counts.forEach((n, i) => {
    cumulative += n;
    const bound = h.boundsMs[i];
    samples.push({ suffix: '_bucket', labels: { ...labels, le: bound === undefined ? '+Inf' : formatValue(bound / divisor) }, value: cumulative });
  });
  samples.push({ suffix: '_sum', labels, value: h.sumMs / divisor }, { suffix: '_count', labels, value: cumulative });
  return samples;
}
