export const RANGES = ['15m', '1h', '6h', '24h', '7d'] as const;
export type Range = (typeof RANGES)[number];

export const isRange = (v: unknown): v is Range => RANGES.includes(v as Range);

/** The time window of a page's figures, as the `since` the API takes. */
export function RangePicker({ value, onChange, id = 'range' }: { value: Range; onChange: (r: Range) => void; id?: string }) {
  return (
    <label class="inline" for={id}>
      Time range
      <select id={id} value={value} onChange={(e) => onChange((e.currentTarget as HTMLSelectElement).value as Range)}>
        {RANGES.map((r) => (
          <option key={r} value={r}>
            last {r}
          </option>
        ))}
      </select>
    </label>
  );
}
