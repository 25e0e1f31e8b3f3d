/**
 * Which containers (replicas) serve each service, and the images each service keeps, on disk
 * (DATA/serving.json). A replica is recorded before it enters the route (at a switch, the new set
 * replaces the old one before the old replicas are drained) and forgotten when it leaves, so a
 * restarted agent trusts exactly the replicas it last saw healthy (see plan.ts). Records written
 * before replicas (`{container: "id"}`) are read as a set of one. Each service
 * keeps its current image and the one before (for a rollback without a download); older ones wait
 * in the record until they are pruned, so a crash between the switch and the pruning leaks nothing.
 * An unreadable record only costs a redeploy: every container is then unproven, and the services
 * are rolled out again. A missing one (an agent upgraded from before the record) adopts, once, the
 * running containers that match the desired state, so an upgrade takes nothing down.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../../shared/durable-file.js';
import type { Logger } from '../../shared/logger.js';

/** Where the record lives: a file on the device, memory in unit tests. */
export interface RecordStore {
  /** null when there is no record yet. */
  read(): Promise<string | null>;
  write(text: string): Promise<void>;
}

export function recordFile(dataDir: string): RecordStore & { path: string } {
  const path = join(dataDir, 'serving.json');
  return {
    path,
    read: async () => {
      try {
        return await readFile(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
      }
    },
    write: (text) => writeFileDurably(path, text),
  };
}

interface Serving {
  containers: string[];
  /** Newest first: the image it runs, then the previous one. */
  images: string[];
}

const IMAGES_KEPT = 2;

export class PromotedContainers {
  /** Writes run one at a time, each with the whole record. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly store: RecordStore,
    private readonly byService: Map<string, Serving>,
    /** Images no service keeps, not yet removed from the engine. */
    private readonly unusedImages: Set<string>,
    private missing: boolean,
  ) {}

  static async load(store: RecordStore, logger: Logger): Promise<PromotedContainers> {
    const byService = new Map<string, Serving>();
    const unused = new Set<string>();
    let missing = false;
    const strings = (v: unknown) => (Array.isArray(v) ? v.filter((i): i is string => typeof i === 'string') : []);
    try {
      const text = await store.read();
      missing = text === null;
      const parsed = (text === null ? {} : JSON.parse(text)) as { services?: Record<string, { containers?: unknown; container?: unknown; images?: unknown }>; unused?: unknown };
      for (const [service, s] of Object.entries(parsed.services ?? {})) {
        const containers = typeof s?.container === 'string' ? [s.container] : strings(s?.containers);
        byService.set(service, { containers, images: strings(s?.images) });
      }
      for (const image of strings(parsed.unused)) unused.add(image);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'the record of which containers serve is unreadable; every service will be rolled out again');
    }
    return new PromotedContainers(store, byService, unused, missing);
  }

  /**
   * Only while there has never been a record: takes these running containers as promoted and writes
   * the record (even empty), so the adoption happens once. Resolves false when it did nothing.
   */
  async adoptOnce(running: ReadonlyArray<{ service: string; container: string; image: string }>): Promise<boolean> {
    if (!this.missing) return false;
    await this.change(() => {
      for (const r of running) {
        const containers = this.byService.get(r.service)?.containers ?? [];
        this.byService.set(r.service, { containers: [...containers, r.container], images: [r.image] });
      }
    });
    // Only once the record is on disk: until then a restart must not adopt what this agent launches.
    this.missing = false;
    return true;
  }

  ids(): ReadonlySet<string> {
    return new Set([...this.byService.values()].flatMap((s) => s.containers));
  }

  /** Images to remove from the engine: no service keeps them. */
  unused(): string[] {
    return [...this.unusedImages];
  }

  /** The switch of a rollout: these replicas, and only these, serve the service. Resolves once the record is on disk. */
  promote(service: string, containers: readonly string[], image: string): Promise<void> {
    return this.change(() => this.byService.set(service, { containers: [...containers], images: this.imagesWith(service, image) }));
  }

  /** Replicas joining those that serve (scaling up, a replacement), before they enter the route. */
  admit(service: string, containers: readonly string[], image: string): Promise<void> {
    const before = this.byService.get(service)?.containers ?? [];
    return this.change(() => this.byService.set(service, { containers: [...new Set([...before, ...containers])], images: this.imagesWith(service, image) }));
  }

  /** Replicas no longer trusted: out of the route (scaled down, lost, stopped); their service keeps its images. */
  forget(containers: readonly string[]): Promise<void> {
    const gone = new Set(containers);
    if (![...this.byService.values()].some((s) => s.containers.some((c) => gone.has(c)))) return Promise.resolve();
    return this.change(() => {
      for (const s of this.byService.values()) s.containers = s.containers.filter((c) => !gone.has(c));
    });
  }

  /** Forgets services no longer desired. */
  retain(services: readonly string[]): Promise<void> {
    const gone = [...this.byService.keys()].filter((s) => !services.includes(s));
    if (gone.length === 0) return Promise.resolve();
    return this.change(() => gone.forEach((s) => this.byService.delete(s)));
  }

  /**
   * Recorded before a pull: an image that never gets promoted (its revision fails, or is dropped)
   * would otherwise stay on the disk for good. Pruning skips it while a service still wants it.
   */
  pulling(image: string): Promise<void> {
    if (this.keptImages().has(image) || this.unusedImages.has(image)) return Promise.resolve();
    this.unusedImages.add(image);
    return this.save();
  }

  /** The image is gone from the engine. */
  pruned(image: string): Promise<void> {
    return this.change(() => this.unusedImages.delete(image));
  }

  private change(apply: () => void): Promise<void> {
    const before = this.keptImages();
    apply();
    const kept = this.keptImages();
    for (const image of before) if (!kept.has(image)) this.unusedImages.add(image);
    // An image a service takes up again is no longer unused.
    for (const image of kept) this.unusedImages.delete(image);
    return this.save();
  }

  private imagesWith(service: string, image: string): string[] {
    return [image, ...(this.byService.get(service)?.images ?? []).filter((i) => i !== image)].slice(0, IMAGES_KEPT);
  }

  private keptImages(): Set<string> {
    return new Set([...this.byService.values()].flatMap((s) => s.images));
  }

  private save(): Promise<void> {
    const text = JSON.stringify({ v: 2, services: Object.fromEntries(this.byService), unused: [...this.unusedImages] });
    const run = this.#queue.then(() => this.store.write(text));
    this.#queue = run.catch(() => undefined);
    return run;
  }
}
