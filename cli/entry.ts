/**
 * Which file runs an `edgeml` command line: the bundled client (dist/cli/edgeml-client.mjs, one
 * file instead of ~460 modules) or the compiled tree (dist/cli/bin.js). bin/edgeml asks this before
 * anything else is loaded, so it must stay cheap: one small JSON read and a stat per bundled file.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';

/** What scripts/build-cli.mjs writes beside the bundle (paths relative to dist/cli/). */
export interface BundleManifest {
  bundle: string;
  /** The newest modification time (ms) of the dist/ files the bundle was made from, when it was made. */
  newestInputMs: number;
  inputs: string[];
}

export const BUNDLE_MANIFEST = 'edgeml-client.json';

/**
 * `hub` and `agent` run servers from the compiled tree (the bundle holds no hub or agent module);
 * `--version` alone needs two small modules there, cheaper than compiling the bundle.
 */
function needsCompiledTree(args: readonly string[]): boolean {
  if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) return true;
  return runsServer(args);
}

/** `hub …` and `agent …`: long-running processes, not a client command that ends in a moment. */
export function runsServer(args: readonly string[]): boolean {
  // The program's own options take no value: the first word that is not an option names the command.
  const command = args.find((a) => !a.startsWith('-'));
  return command === 'hub' || command === 'agent';
}

/**
 * The bundle, if the build made one and no file it was made from has changed since: a
 * `tsc -p tsconfig.build.json` alone rewrites dist/ and must not leave an old bundle in use.
 */
export function freshBundle(distCli: URL): URL | undefined {
  try {
    const manifest = JSON.parse(readFileSync(new URL(BUNDLE_MANIFEST, distCli), 'utf8')) as BundleManifest;
    const bundle = new URL(manifest.bundle, distCli);
    // An installed package (no tsconfig beside dist/) has files timed by npm's unpacking, and
    // nothing rebuilds dist/ there: its bundle is as current as the rest.
    if (!existsSync(new URL('../../tsconfig.build.json', distCli))) return existsSync(bundle) ? bundle : undefined;
    if (statSync(bundle).mtimeMs < manifest.newestInputMs) return undefined;
    for (const input of manifest.inputs) {
      if (statSync(new URL(input, distCli)).mtimeMs > manifest.newestInputMs) return undefined;
    }
    return bundle;
  } catch {
    // No bundle built (only tsc ran), or one being rebuilt: the compiled tree always works.
    return undefined;
  }
}

/** The module to import for these arguments (`process.argv.slice(2)`); `distCli` is dist/cli/ as a directory URL. */
export function entryFor(args: readonly string[], distCli: URL): URL {
  return (needsCompiledTree(args) ? undefined : freshBundle(distCli)) ?? new URL('bin.js', distCli);
}
