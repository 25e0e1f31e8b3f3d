/**
 * The operator portal: the static app built into dist/ui (scripts/build-portal.mjs), served at /ui.
 * Every /ui path that is not a file answers index.html, so a bookmarked page loads the app, which
 * routes in the browser. The app calls the same /api/v1 routes as the CLI; nothing here reads data.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';

export const PORTAL_PATH = '/ui/';

/** dist/ui beside the compiled hub, or under dist/ when the hub runs from its TypeScript sources. */
export function portalRoot(): string | null {
  for (const relative of ['../../ui/', '../../dist/ui/']) {
    const dir = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(`${dir}index.html`)) return dir;
  }
  return null;
}

const HEADERS = {
  // Everything from the hub itself; pages and the chart library set styles through the DOM, which CSP allows.
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // Asset names carry no hash: revalidate each time so a hub upgrade shows the new portal.
  'cache-control': 'no-cache',
};

export async function portalRoutes(app: FastifyInstance, { root }: { root: string | null }): Promise<void> {
  // A shared `/ui?label=site=a` keeps its filter on the way to `/ui/`.
  const toPortal = async (req: FastifyRequest, reply: FastifyReply) => {
    const query = req.url.indexOf('?');
    return reply.redirect(PORTAL_PATH + (query < 0 ? '' : req.url.slice(query)), 302);
  };
  app.get('/', { schema: { hide: true } }, toPortal);
  app.get('/ui', { schema: { hide: true } }, toPortal);
  if (!root) {
    const missing = async () => {
      throw new EdgemlError(ErrorCodes.HUB_NOT_FOUND, 'the portal is not built in this install: run `npm run build` in the edgeml checkout', { httpStatus: 404 });
    };
    app.get('/ui/', { schema: { hide: true } }, missing);
    app.get('/ui/*', { schema: { hide: true } }, missing);
    return;
  }
  await app.register(fastifyStatic, {
    root,
    prefix: PORTAL_PATH,
    // One route per file present at start, so /ui/* below can answer every other path.
    wildcard: false,
    index: false,
    cacheControl: false,
    // Also for index.html sent by the routes below (sendFile goes through the same options).
    setHeaders: (res) => {
      for (const [name, value] of Object.entries(HEADERS)) res.setHeader(name, value);
    },
  });
  const page = async (req: FastifyRequest, reply: FastifyReply) => {
    // A missing script or stylesheet is a 404, not the page (which the browser would refuse as a script).
    if (req.url.startsWith(`${PORTAL_PATH}assets/`)) throw new EdgemlError(ErrorCodes.HUB_NOT_FOUND, `no such portal file: ${req.url}`, { httpStatus: 404 });
    return reply.type('text/html; charset=utf-8').sendFile('index.html');
  };
  app.get('/ui/', { schema: { hide: true } }, page);
  app.get('/ui/*', { schema: { hide: true } }, page);
}
