/**
 * A metrics batch whose scoring-code figures (`custom`) break the protocol is not thrown away
 * whole: those figures come from user code on the device, the gateway's counts beside them are
 * still good. The inbox decodes the batch again without them; what was dropped is counted.
 */
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The payload with every service's `custom` removed, or undefined when there was none to remove. */
export function withoutCustom(payload: Buffer): Buffer | undefined {
  let batch: unknown;
  try {
    batch = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isRecord(batch) || batch.kind !== 'metrics' || !isRecord(batch.services)) return undefined;
  let removed = false;
  for (const figures of Object.values(batch.services)) {
    if (isRecord(figures) && Object.hasOwn(figures, 'custom')) {
      delete figures.custom;
      removed = true;
    }
  }
  return removed ? Buffer.from(JSON.stringify(batch)) : undefined;
}
