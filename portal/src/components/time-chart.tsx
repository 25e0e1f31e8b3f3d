/**
 * A time series chart (uPlot on a canvas). Canvas says nothing to a screen reader, so the figure's
 * caption carries the headline and the chart gets an aria-label.
 */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface ChartSeries {
  label: string;
  values: (number | null)[];
}

function sparse(u: uPlot, seriesIdx: number): boolean {
  return (u.data[seriesIdx] ?? []).filter((v) => v !== null && v !== undefined).length < 10;
}

const COLOURS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2'];

export function TimeChart({ title, caption, x, series, height = 180, unit = '', yRange }: { title: string; caption?: ComponentChildren; x: number[]; series: ChartSeries[]; height?: number; unit?: string; /** A fixed scale (percentages: [0, 100]) instead of one fitted to the data. */ yRange?: [number, number] }) {
  const holder = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = series.map((s) => s.label).join('|');

  useEffect(() => {
    const el = holder.current;
    if (!el) return;
    const opts: uPlot.Options = {
      width: Math.max(240, el.clientWidth),
      height,
      // A one-line chart's legend says nothing its title does not.
      legend: { show: series.length > 1 },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, ...(yRange ? { y: { range: yRange } } : {}) },
      // Wide enough for the longest tick label, or "1000 ms" is cut to "00 ms".
      axes: [{}, { size: (_u, values) => (values ? Math.max(...values.map((v) => v.length)) * 7 + 18 : 50), values: (_u, ticks) => ticks.map((v) => `${v}${unit}`) }],
      // A line needs two neighbouring figures: mark each figure while they are few, or a lone one is invisible.
      series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: false, points: { show: sparse } }))],
    };
    plot.current = new uPlot(opts, [x, ...series.map((s) => s.values)] as uPlot.AlignedData, el);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(240, el.clientWidth), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [shape, height, unit, yRange?.[0], yRange?.[1]]);

  useEffect(() => {
    plot.current?.setData([x, ...series.map((s) => s.values)] as uPlot.AlignedData);
  }, [x, series]);

  return (
    <figure class="chart">
      <figcaption>
        <strong>{title}</strong>
        {caption ? <span> · {caption}</span> : null}
      </figcaption>
      <div ref={holder} role="img" aria-label={title} />
    </figure>
  );
}
