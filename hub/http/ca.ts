/**
 * The hub's CA over HTTP. Its certificate and revocation list are public (no API key): a client
 * needs the CA before it can trust anything, and it carries no secret. A client fetching it over
 * an unverified connection should compare `fingerprint256` with `edgeml hub ca --json` on the hub.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { CaCertificate, DeviceCertificates, PEM_MEDIA_TYPE } from '../../shared/api/ca.js';
import { ErrorBody } from '../../shared/api/common.js';
import { DeviceId } from '../../shared/api/devices.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { CaSummary } from '../pki/ca.js';
import type { IssuedCertificate } from '../store/store.js';

const tags = ['ca'];
const Pem = Type.String({ description: 'PEM' });

/** OpenAPI's way to say that an operation needs no credentials (absent would mean the document's default). */
const PUBLIC: Array<Record<string, string[]>> = [];

/** Must be registered before the API key hook, which demands a scope of every /api/v1 route. */
export const caPublicRoutes: FastifyPluginAsyncTypebox<{ ca: CaSummary; crl: () => string }> = async (app, { ca, crl }) => {
  app.get(
    '/api/v1/ca',
    {
      schema: {
        operationId: 'getCaCertificate',
        summary: "The hub's CA certificate (no API key)",
        description: `Public: no API key, no scope. PEM (${PEM_MEDIA_TYPE}) by default; JSON with \`Accept: application/json\`. Devices' gateway certificates and the hub's own HTTPS and MQTT certificates are signed by it.`,
        tags,
        security: PUBLIC,
        response: { 200: { content: { [PEM_MEDIA_TYPE]: { schema: Pem }, 'application/json': { schema: CaCertificate } } } },
      },
    },
    async (req, reply) => {
      if ((req.headers.accept ?? '').includes('application/json')) return reply.type('application/json').send(ca);
      return reply.type(PEM_MEDIA_TYPE).send(ca.certificate);
    },
  );
  app.get(
    '/api/v1/ca/crl',
    {
      schema: {
        operationId: 'getCaCrl',
        summary: "The hub's certificate revocation list, PEM (no API key)",
        description: 'Public: no API key, no scope. Every unexpired certificate of a revoked device. The broker checks client certificates against it at the TLS handshake.',
        tags,
        security: PUBLIC,
        response: { 200: { content: { [PEM_MEDIA_TYPE]: { schema: Pem } } } },
      },
    },
    async (_req, reply) => reply.type(PEM_MEDIA_TYPE).send(crl()),
  );
};

export const deviceCertificateRoutes: FastifyPluginAsyncTypebox<{ certificatesOf: (id: string) => Promise<IssuedCertificate[] | undefined>; now: () => number }> = async (
  app,
  { certificatesOf, now },
) => {
  app.get(
    '/api/v1/devices/:id/certificates',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'listDeviceCertificates',
        summary: 'The unexpired certificates the hub signed for a device',
        tags: ['devices'],
        params: Type.Object({ id: DeviceId }),
        response: { 200: DeviceCertificates, 404: ErrorBody },
      },
    },
    async (req) => {
      const certificates = await certificatesOf(req.params.id);
      if (!certificates) throw new EdgemlError(ErrorCodes.HUB_DEVICE_NOT_FOUND, `device ${req.params.id} not found`, { httpStatus: 404 });
      const at = now();
      return { certificates: certificates.filter((c) => Date.parse(c.notAfter) > at) };
    },
  );
};
