/** How telemetry figures read on the page: one place, so a card, a caption and a table agree. */
import type { PercentileName, ServiceFigures } from '../../../shared/api/telemetry.js';

const count = new Intl.NumberFormat('en', { maximumFractionDigits: 0 });

export const fmtCount = (n: number) => count.format(n);

export function fmtRate(perSecond: number): string {
  return `${perSecond >= 10 ? perSecond.toFixed(0) : perSecond >= 0.1 ? perSecond.toFixed(2) : perSecond.toFixed(3)}/s`;
}

export function fmtErrorRate(rate: number | null): string {
  return rate === null ? '—' : `${(rate * 100).toFixed(rate > 0 && rate < 0.001 ? 3 : 1)} %`;
}

/** A percentile in ms; one that fell in the open top bucket is a lower bound ("> N ms"). */
export function fmtPercentile(figures: Pick<ServiceFigures, PercentileName | 'atLeast'>, p: PercentileName): string {
  const ms = figures[p];
  if (ms === null) return '—';
  return `${figures.atLeast.includes(p) ? '> ' : ''}${ms < 10 ? ms.toFixed(1) : ms.toFixed(0)} ms`;
}

/** Unix seconds, as uPlot's time axis takes them. */
export const unixSeconds = (iso: string) => Date.parse(iso) / 1000;
