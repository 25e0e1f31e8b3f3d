/**
 * Connections that have not completed CONNECT, counted per source address: past `max`, a new one
 * from that address is refused at once. Unauthenticated sockets cost the hub buffers and file
 * descriptors; an address that opens them by the thousand must not take the broker from the fleet.
 */
export class ConnectingLimit {
  readonly #perAddress = new Map<string, number>();
  /** Connections counted and not yet released, as `address port` (a TCP connection's identity). */
  readonly #counted = new Set<string>();

  constructor(private readonly max: number) {}

  /** Counts a new connection; false (and not counted) if its address already has `max` connecting. */
  admit(address: string, port: number): boolean {
    const n = this.#perAddress.get(address) ?? 0;
    if (n >= this.max) return false;
    this.#perAddress.set(address, n + 1);
    this.#counted.add(`${address} ${port}`);
    return true;
  }

  /** The connection completed CONNECT, or closed: it no longer counts. Releasing twice is harmless. */
  release(address: string, port: number): void {
    if (!this.#counted.delete(`${address} ${port}`)) return;
    const n = this.#perAddress.get(address)! - 1;
    if (n === 0) this.#perAddress.delete(address);
    else this.#perAddress.set(address, n);
  }
}
