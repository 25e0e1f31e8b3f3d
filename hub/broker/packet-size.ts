/**
 * Follows the MQTT framing of a connection's bytes as they arrive, so that a packet announced over
 * its limit is refused from its fixed header, before its body is buffered: mqtt-packet (under aedes)
 * keeps every byte of a packet until the packet is complete, whatever length its header announced.
 */

/** MQTT 3.1.1 §2.2.3: the remaining length takes at most four bytes. */
const MAX_LENGTH_BYTES = 4;

export class PacketSizeReader {
  /** Bytes of the current packet's body still to come. */
  #body = 0;
  /** Whether a type byte was read and its remaining-length bytes are being read. */
  #inHeader = false;
  #length = 0;
  #lengthBytes = 0;

  /**
   * Follows `chunk`; returns the size (fixed header and body) of the first packet it announces over
   * `limit()`, Infinity for a remaining length longer than MQTT allows, or null when all is within.
   * `limit` is asked as each header completes: it may change as the connection goes on.
   */
  feed(chunk: Uint8Array, limit: () => number): number | null {
    let i = 0;
    while (i < chunk.length) {
      if (this.#body > 0) {
        const skipped = Math.min(this.#body, chunk.length - i);
        this.#body -= skipped;
        i += skipped;
        continue;
      }
      const byte = chunk[i++]!;
      if (!this.#inHeader) {
        this.#inHeader = true;
        this.#length = 0;
        this.#lengthBytes = 0;
        continue;
      }
      this.#length += (byte & 0x7f) * 128 ** this.#lengthBytes;
      this.#lengthBytes++;
      if (byte & 0x80) {
        if (this.#lengthBytes === MAX_LENGTH_BYTES) return Number.POSITIVE_INFINITY;
        continue;
      }
      this.#inHeader = false;
      const size = 1 + this.#lengthBytes + this.#length;
      if (size > limit()) return size;
      this.#body = this.#length;
    }
    return null;
  }
}
