/**
 * `edgeml image …`: build a manifest into a multi-arch scoring image and wait for it, list, show,
 * cancel, and read a build's log. The hub does the work; `build` waits by following the build log,
 * and the image record (read between follows) says when the build is over and how it ended.
 */
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import {
  FINISHED_STATUSES,
  IMAGE_STATUSES,
  IMAGE_TAG_PATTERN,
  ImageBuildRequest,
  PLATFORMS,
  type Image,
  type ImageStatus,
  type Platform,
} from '../../shared/api/images.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import { inputError, parseChoice, parseModelRef, parseName, repeatable } from '../args.js';
import { addClientOptions, clientAction, type CliIo, type ClientContext } from './client-command.js';
import { describeActivity, outcomeError, renderFailedChecks, renderImage, renderImageList } from './image-views.js';

// --- arguments -------------------------------------------------------------------------------

export interface ManifestSelector {
  name: string;
  /** Undefined for `NAME` and `NAME:latest`: the hub builds the latest version. */
  version: number | undefined;
}

export function parseManifestSelector(label: string) {
  const parse = parseModelRef(label, ['bare', 'number', 'latest']);
  return (text: string): ManifestSelector => {
    const { name, ref } = parse(text);
    return { name, version: ref === undefined || ref === 'latest' ? undefined : Number(ref) };
  };
}

/** A comma list; repeating the flag adds to it, so `--platform a --platform b` works too. */
export function parsePlatforms(label: string) {
  return (text: string, previous: Platform[] | undefined): Platform[] => {
    const chosen = [...(previous ?? [])];
    for (const item of text.split(',').map((s) => s.trim())) {
      const expected = `expected a comma-separated list of ${PLATFORMS.join(', ')}`;
      if (!(PLATFORMS as readonly string[]).includes(item)) {
        throw inputError(`${label} ${JSON.stringify(text)}: ${expected} (${item ? `${JSON.stringify(item)} is not one` : 'an empty entry'})`);
      }
      if (chosen.includes(item as Platform)) throw inputError(`${label} ${item} is given twice`);
      chosen.push(item as Platform);
    }
    return chosen;
  };
}

export function parseImageTag(label: string) {
  const re = new RegExp(IMAGE_TAG_PATTERN);
  return (text: string): string => {
    if (!re.test(text)) {
      throw inputError(`${label} ${JSON.stringify(text)}: expected an image tag of 1–128 letters, digits, "_", "." or "-", not starting with "." or "-", e.g. stable`);
    }
    return text;
  };
}

const ID_RE = /^[1-9][0-9]{0,8}$/;

export function parseImageId(label: string) {
  return (text: string): number => {
    if (!ID_RE.test(text)) throw inputError(`${label} ${JSON.stringify(text)}: expected an image id 1, 2, … (see edgeml image list)`);
    return Number(text);
  };
}

interface BuildFlags {
  platform?: Platform[];
  tag?: string[];
  wait: boolean;
  logs?: boolean;
}

const MAX_TAGS = ImageBuildRequest.properties.tags.maxItems ?? Number.POSITIVE_INFINITY;

export function buildRequest(manifest: ManifestSelector, flags: Pick<BuildFlags, 'platform' | 'tag'>): ImageBuildRequest {
  const tags = flags.tag ?? [];
  const twice = tags.find((tag, i) => tags.indexOf(tag) !== i);
  if (twice !== undefined) throw inputError(`--tag ${twice} is given twice`);
  if (tags.length > MAX_TAGS) throw inputError(`--tag is given ${tags.length} times; at most ${MAX_TAGS} tags`);
  return {
    manifest: manifest.name,
    ...(manifest.version === undefined ? {} : { version: manifest.version }),
    ...(flags.platform === undefined ? {} : { platforms: flags.platform }),
    ...(tags.length ? { tags } : {}),
  };
}

/** Integration tests shorten the wait between status polls; people have no reason to set it. */
export const POLL_ENV = 'EDGEML_POLL_MS';
const DEFAULT_POLL_MS = 1000;

export function pollInterval(env: Record<string, string | undefined>): number {
  const text = env[POLL_ENV];
  if (text === undefined || text === '') return DEFAULT_POLL_MS;
  if (!ID_RE.test(text)) throw new EdgemlError(ErrorCodes.CONFIG_INVALID, `${POLL_ENV}=${JSON.stringify(text)}: expected milliseconds, a whole number ≥ 1`);
  return Number(text);
}

// --- waiting for a build ---------------------------------------------------------------------

interface StatusView {
  /** Whether the view wants the record polled while the build runs. */
  readonly live: boolean;
  show(image: Image): void;
  stop(): void;
}

const SILENT_VIEW: StatusView = { live: false, show() {}, stop() {} };

/** Plain lines for a log file or CI: one per status change, nothing redrawn. */
function statusLines(stderr: NodeJS.WritableStream): StatusView {
  let last: ImageStatus | undefined;
  let stopped = false;
  return {
    live: true,
    show(image) {
      // A poll still in flight when waiting failed must not print after the error.
      if (stopped || image.status === last) return;
      last = image.status;
      stderr.write(`image ${image.id}: ${image.status}\n`);
    },
    stop() {
      stopped = true;
    },
  };
}

/** A bar keyed on build steps, redrawn in place; cli-progress is loaded only for a terminal. */
async function statusBar(stderr: NodeJS.WritableStream, id: number): Promise<StatusView> {
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar(
    { stream: stderr, format: `image ${id} [{bar}] {activity}`, hideCursor: true, barsize: 20, emptyOnZero: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(0, 0, { activity: 'queued' });
  let stopped = false;
  return {
    live: true,
    show(image) {
      if (stopped) return;
      const payload = { activity: describeActivity(image.status, image.progress) };
      if (image.progress) {
        bar.setTotal(image.progress.stepsTotal);
        bar.update(image.progress.stepsDone, payload);
      } else if (image.status === 'succeeded') {
        // A finished record carries no progress, and the last poll may have seen 16 of 18 steps.
        bar.update(bar.getTotal(), payload);
      } else {
        bar.update(payload);
      }
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}

async function statusView(ctx: ClientContext, image: Image, logs: boolean): Promise<StatusView> {
  // With --logs the log lines are the progress; a bar redrawn between them would garble both.
  if (ctx.out.json || logs) return SILENT_VIEW;
  const view = ctx.showProgress ? await statusBar(ctx.io.stderr, image.id) : statusLines(ctx.io.stderr);
  view.show(image);
  return view;
}

/** Display only: a failed poll is skipped, since the wait's own reads report real failures. */
async function pollStatus(ctx: ClientContext, id: number, pollMs: number, view: StatusView, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    try {
      await sleep(pollMs, undefined, { signal });
      view.show(await ctx.client.call('getImage', { params: { id } }));
    } catch {
      // stopped, or one poll failed: the loop condition decides
    }
  }
}

const isFinished = (i: Image) => FINISHED_STATUSES.includes(i.status);

/**
 * Reads the build log (following it while the build runs), writing what comes after the first
 * `skip` bytes (written by an earlier follow) to `out`. Returns how many bytes have been written.
 */
async function followLog(ctx: ClientContext, id: number, skip: number, out: NodeJS.WritableStream | undefined, follow = true): Promise<number> {
  const log = await ctx.client.call('getImageBuildLog', { params: { id }, query: { follow: follow || undefined } });
  let seen = 0;
  for await (const chunk of log.body) {
    const bytes = chunk as Buffer;
    const fresh = seen >= skip ? bytes : bytes.subarray(Math.min(bytes.length, skip - seen));
    seen += bytes.length;
    if (out && fresh.length > 0 && !out.write(fresh)) await once(out, 'drain', { signal: ctx.signal });
  }
  return Math.max(seen, skip);
}

/**
 * Follows the build log until the build finishes, writing it to `out`. The hub keeps a follow open
 * from the queue to the end of the build, but a follow can still end early (a hub restart, a reader
 * cut off for falling behind, a dropped connection): so the record decides, read between follows,
 * and a follow that ends early costs one poll interval, never a busy loop. Returns the finished record.
 */
async function followUntilFinished(ctx: ClientContext, first: Image, out: NodeJS.WritableStream | undefined, pollMs: number): Promise<Image> {
  const get = () => ctx.client.call('getImage', { params: { id: first.id } });
  let image = first;
  let written = 0;
  let attempt = first.attempts;
  for (;;) {
    const finished = isFinished(image);
    if (finished && out === undefined) return image;
    if (image.status !== 'queued' || finished) {
      // A build restarted by the hub writes its log afresh: print the new one from its start.
      if (image.attempts !== attempt) [attempt, written] = [image.attempts, 0];
      written = await followLog(ctx, first.id, written, out);
      // Once finished, that follow had the whole log.
      if (finished) return image;
      image = await get();
      if (isFinished(image)) continue;
    }
    await sleep(pollMs, undefined, { signal: ctx.signal });
    image = await get();
  }
}

export async function waitForImage(ctx: ClientContext, queued: Image, opts: { logs: boolean; pollMs: number }): Promise<Image> {
  const view = await statusView(ctx, queued, opts.logs);
  const stopPolling = new AbortController();
  const polling = view.live ? pollStatus(ctx, queued.id, opts.pollMs, view, AbortSignal.any([ctx.signal, stopPolling.signal])) : undefined;
  try {
    const image = await followUntilFinished(ctx, queued, opts.logs ? ctx.io.stderr : undefined, opts.pollMs);
    stopPolling.abort();
    await polling;
    view.show(image);
    return image;
  } catch (err) {
    if (ctx.signal.aborted) {
      // The bar goes first, or the message would be drawn over.
      view.stop();
      throw new EdgemlError(ErrorCodes.CLI_INTERRUPTED, `stopped waiting; image ${queued.id} is still building on the hub (edgeml image cancel ${queued.id} stops it)`, {
        cause: err,
      });
    }
    throw err;
  } finally {
    stopPolling.abort();
    view.stop();
  }
}

/** The log as it stands, or with `follow` until the build finishes, written to `out`. */
async function printLog(ctx: ClientContext, id: number, follow: boolean, out: NodeJS.WritableStream): Promise<void> {
  if (follow) {
    await followUntilFinished(ctx, await ctx.client.call('getImage', { params: { id } }), out, pollInterval(ctx.io.env));
  } else {
    await followLog(ctx, id, 0, out, false);
  }
}

// --- commands --------------------------------------------------------------------------------

export function addImageCommands(program: Command, io: CliIo): void {
  const image = program.command('image').description('scoring images built from manifests for linux/amd64 and linux/arm64');

  image
    .command('build')
    .description('build a manifest into a multi-arch image, push it and smoke-test each platform; waits unless --no-wait')
    .argument('<manifest>', 'NAME, NAME:VERSION or NAME:latest', parseManifestSelector('MANIFEST'))
    .option('--platform <list>', `comma-separated, from ${PLATFORMS.join(', ')} (default: both)`, parsePlatforms('--platform'))
    .option('--tag <tag>', 'an extra image tag besides vN; repeat for several', repeatable(parseImageTag('--tag')))
    .option('--no-wait', 'print the queued image and return')
    .option('--logs', 'stream the build log to stderr while waiting')
    .action(
      clientAction<[ManifestSelector], BuildFlags>(io, async (ctx, [manifest], flags) => {
        if (!flags.wait && flags.logs) throw inputError('--logs needs to wait for the build; drop --no-wait (or use edgeml image log ID --follow)');
        const body = buildRequest(manifest, flags);
        const pollMs = pollInterval(ctx.io.env);
        const queued = await ctx.client.call('buildImage', { body });
        const result = flags.wait ? await waitForImage(ctx, queued, { logs: flags.logs === true, pollMs }) : queued;
        ctx.out.result(result, () => renderImage(result));
        const failure = outcomeError(result);
        if (failure) {
          ctx.io.stderr.write(renderFailedChecks(result));
          throw failure;
        }
      }),
    );

  image
    .command('list')
    .description('list images, oldest first')
    .option('--manifest <name>', 'only images of this manifest', parseName('--manifest'))
    .option('--status <status>', IMAGE_STATUSES.join(', '), parseChoice('--status', IMAGE_STATUSES))
    .action(
      clientAction<[], { manifest?: string; status?: ImageStatus }>(io, async (ctx, _args, flags) => {
        const list = await ctx.client.call('listImages', { query: { manifest: flags.manifest, status: flags.status } });
        ctx.out.result(list, () => renderImageList(list.images));
      }),
    );

  image
    .command('show')
    .description('one image in detail, with live progress while it builds')
    .argument('<id>', 'image id', parseImageId('ID'))
    .action(
      clientAction<[number], object>(io, async (ctx, [id]) => {
        const i = await ctx.client.call('getImage', { params: { id } });
        ctx.out.result(i, () => renderImage(i));
      }),
    );

  image
    .command('cancel')
    .description('cancel a queued or running build (a running one stops shortly after)')
    .argument('<id>', 'image id', parseImageId('ID'))
    .action(
      clientAction<[number], object>(io, async (ctx, [id]) => {
        const i = await ctx.client.call('cancelImageBuild', { params: { id } });
        ctx.out.result(i, () => renderImage(i));
      }),
    );

  image
    .command('log')
    .description("print a build's log; --json prints {id, log} once the log ends")
    .argument('<id>', 'image id', parseImageId('ID'))
    .option('--follow', 'keep printing new lines until the build finishes')
    .action(
      clientAction<[number], { follow?: boolean }>(io, async (ctx, [id], flags) => {
        if (!ctx.out.json) {
          await printLog(ctx, id, flags.follow === true, ctx.io.stdout);
          return;
        }
        const chunks: Buffer[] = [];
        const collect = new Writable({
          write(chunk: Buffer, _encoding, done) {
            chunks.push(chunk);
            done();
          },
        });
        await printLog(ctx, id, flags.follow === true, collect);
        ctx.out.result({ id, log: Buffer.concat(chunks).toString('utf8') }, () => '');
      }),
    );

  addClientOptions(image);
}
