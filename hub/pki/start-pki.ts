/**
 * The hub's PKI as the hub starts: its CA, the revocation list and the index of issued device
 * certificates, and the certificate each listener (REST, MQTT) serves.
 */
import { join } from 'node:path';
import { parseHostPort } from '../../shared/address.js';
import { systemClock } from '../../shared/clock.js';
import { EdgemlError, ErrorCodes } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { ShutdownStack } from '../../shared/shutdown-stack.js';
import { listenerTls, readConfigFile, type HubConfig } from '../config.js';
import type { HubStore } from '../store/store.js';
import { CA_DIR, CA_KEY_FILE, caSummary, openHubCa, type HubCa } from './ca.js';
import { startHubCertificate, type ServerKeyPair } from './hub-certificate.js';
import { IssuedCertificates, validIssuedCertificates } from './issued-certificates.js';
import { listenNames, splitSan, subjectAltNames } from './names.js';
import { RevocationList } from './revocation.js';

/**
 * The CA (made in DATA/ca at first start), the revocation list it signs, kept current, and the index
 * of the certificates it issued to devices (from the store; damaged entries are left out and reported).
 */
export async function startPki(config: Readonly<HubConfig>, dataDir: string, store: HubStore, parts: ShutdownStack, logger: Logger) {
  const ca = await openHubCa(config, dataDir);
  const summary = caSummary(ca);
  const facts = { source: ca.source, subject: summary.subject, fingerprint256: summary.fingerprint256, notAfter: summary.notAfter };
  logger.info(facts, ca.created ? 'created the hub CA (key readable by this user only)' : 'hub CA');
  if (ca.keyReadableByOthers) logger.warn({ file: join(dataDir, CA_DIR, CA_KEY_FILE) }, 'the hub CA key is readable by other users: chmod 600 it');
  const stored = await store.devices.list();
  const issued = IssuedCertificates.fromDevices(
    stored.map((d) => {
      const { valid, dropped } = validIssuedCertificates(d.certificates);
      if (dropped.length > 0) logger.warn({ deviceId: d.id, dropped }, 'damaged stored certificate entries of a device are left out');
      return { id: d.id, certificates: valid };
    }),
  );
  const revocations = await RevocationList.open({ ca, devices: store.devices, clock: systemClock });
  revocations.startRefresh((err) => logger.error({ err }, 'cannot renew the certificate revocation list (the current one stays)'));
  parts.push(async () => revocations.close());
  return { ca, summary, revocations, issued };
}

/**
 * The certificate a listener serves: none (TLS off), the operator's files, or one from the hub's CA
 * in DATA/tls, renewed while the hub runs (`onRenew` swaps it into the listening server). `names`:
 * what the listener is reached under (its certificate's subjectAltName), which no device may get.
 */
export async function listenerCertificate(
  config: Readonly<HubConfig>,
  listener: 'http' | 'mqtt',
  pki: { dataDir: string; ca: HubCa; parts: ShutdownStack; logger: Logger },
  onRenew: (pair: ServerKeyPair) => void,
): Promise<{ pair: ServerKeyPair | undefined; names: string[] }> {
  const mode = listenerTls(config, listener);
  const names = listenNames(parseHostPort(listener === 'http' ? config.http : config.mqtt).host, splitSan(config.tlsSan));
  if (mode === 'off') return { pair: undefined, names };
  const [certFlag, keyFlag, cert, key] = listener === 'http' ? ['--tls-cert', '--tls-key', config.tlsCert, config.tlsKey] : ['--mqtt-tls-cert', '--mqtt-tls-key', config.mqttTlsCert, config.mqttTlsKey];
  if (mode === 'operator' && cert !== undefined && key !== undefined) {
    const pair = { cert: await readConfigFile(certFlag, cert), key: await readConfigFile(keyFlag, key) };
    let operatorNames: string[];
    try {
      operatorNames = subjectAltNames(pair.cert);
    } catch (err) {
      throw new EdgemlError(ErrorCodes.CONFIG_INVALID, `invalid configuration: ${certFlag} ${cert} is not a PEM certificate: ${(err as Error).message}`, { cause: err });
    }
    return { pair, names: [...new Set([...names, ...operatorNames])] };
  }
  const { logger } = pki;
  const running = await startHubCertificate(
    { dataDir: pki.dataDir, name: listener === 'http' ? 'hub' : 'mqtt', ca: pki.ca, names, clock: systemClock },
    (pair) => {
      onRenew(pair);
      logger.info({ listener, names }, 'renewed the server certificate');
    },
    (err) => logger.error({ err, listener }, 'cannot renew the server certificate (retrying in an hour)'),
  );
  pki.parts.push(async () => running.close());
  logger.info({ listener, names }, running.issued ? 'issued a server certificate from the hub CA' : 'server certificate from the hub CA');
  return { pair: running.current, names };
}
