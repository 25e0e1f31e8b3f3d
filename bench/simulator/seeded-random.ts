/**
 * Reproducible randomness for the fleet simulator. Every draw is a hash of the seed and a key
 * (device, service, revision, what is drawn), not the next value of one shared stream: which devices
 * fail, and how long each step takes, then stay the same from run to run even though MQTT delivers
 * desired states to devices in a different order every time.
 */

/** A number in [0, 1) determined by `seed` and `key` alone (cyrb53: 53 well-mixed bits). */
export function uniform(seed: number, key: string): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < key.length; i++) {
    const ch = key.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return ((h2 >>> 0) % 2 ** 21 * 2 ** 32 + (h1 >>> 0)) / 2 ** 53;
}

/** The parts of a key, joined with a separator no device id, service name or number contains. */
export function drawKey(...parts: ReadonlyArray<string | number>): string {
  return parts.join('\u0000');
}
