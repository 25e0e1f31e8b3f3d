/**
 * `edgeml device …`: enroll a device (its token is printed once), list and show devices (with the
 * services they run and their replicas), change labels, revoke. Enrolling, labelling and revoking
 * need an admin key.
 */
import type { Command } from 'commander';
import { DEVICE_STATUSES, type Device, type DeviceEnrollment, type DeviceLabelsUpdate, type DeviceStatus } from '../../shared/api/devices.js';
import type { ServingService } from '../../shared/api/where.js';
import { formatBytes } from '../../shared/size.js';
import { inputError, keyValueRecord, keyValueText, parseChoice, parseDeviceId, parseLabel, repeatable, type KeyValue } from '../args.js';
import { formatPairs, formatTime, renderFields, renderTable } from '../output.js';
import { showList, withWatchOptions, type WatchFlags } from '../watch.js';
import { addClientOptions, clientAction, type CliIo } from './client-command.js';
import { renderDeviceReplicas } from './replica-views.js';
import { addGraceOption, renderRotated } from './rotation-output.js';
import { renderServices } from './where-views.js';

const seen = (d: Device) => (d.lastSeen ? formatTime(d.lastSeen) : '-');

export function renderDeviceList(devices: readonly Device[]): string {
  return renderTable(
    ['ID', 'STATUS', 'LABELS', 'PLATFORM', 'LAST SEEN'],
    devices.map((d) => [d.id, d.status, formatPairs(d.labels) || '-', d.facts?.platform ?? '-', seen(d)]),
    '(no devices)',
  );
}

const generation = (g: number | null) => (g === null ? '-' : String(g));

export function renderDevice(d: Device, services: readonly ServingService[]): string {
  const f = d.facts;
  const fields = renderFields([
    ['device', d.id],
    ['status', d.status === 'offline' && d.offlineReason ? `offline (${d.offlineReason})` : d.status],
    ['labels', formatPairs(d.labels) || '-'],
    ['online since', d.onlineSince ?? undefined],
    ['last seen', d.lastSeen ?? '-'],
    ['platform', f?.platform],
    ['host', f ? `${f.hostname}, ${f.os.distro} ${f.os.release}, kernel ${f.os.kernel}` : undefined],
    ['cpus / memory', f ? `${f.cpus} / ${formatBytes(f.memoryBytes)}` : undefined],
    ['docker', f ? (f.docker ? `${f.docker.version} (API ${f.docker.apiVersion})` : 'not reachable') : undefined],
    ['agent', f?.agentVersion],
    ['enrolled', `${d.enrolledAt} by ${d.enrolledBy.keyName} (key ${d.enrolledBy.keyId})`],
    ['revoked', d.revokedAt ?? undefined],
    ['generation', `desired ${generation(d.desiredGeneration)}, observed ${generation(d.observedGeneration)}${d.phase ? ` (${d.phase})` : ''}`],
  ]);
  return `${fields}services:\n${renderServices(services)}${renderDeviceReplicas(d.services)}`;
}

/**
 * The token, then the agent's command line with the broker the hub says devices reach it at. The
 * token goes in the environment: a command-line flag would show in ps.
 */
export function renderEnrolled(d: DeviceEnrollment): string {
  const tls = d.broker.startsWith('mqtts:');
  return [
    `enrolled device ${d.id}${Object.keys(d.labels).length ? ` (${formatPairs(d.labels)})` : ''}; its token:`,
    '',
    `  ${d.token}`,
    '',
    'This is the only time the token is shown. On the device, with the token in EDGEML_AGENT_TOKEN:',
    `  edgeml agent start --hub ${d.broker} --device-id ${d.id}${tls ? ' --hub-ca hub-ca.pem' : ''}`,
    ...(tls ? ["(hub-ca.pem: the hub's CA, from `edgeml hub ca`; leave --hub-ca out if the broker's certificate is from a public CA)"] : []),
  ].join('\n');
}

/** `KEY=VALUE` sets a label, `KEY-` removes it (as kubectl label does). */
export function parseLabelChange(text: string): { set?: KeyValue; remove?: string } {
  if (text.endsWith('-') && !text.includes('=')) {
    const key = text.slice(0, -1);
    if (!key) throw inputError(`label change ${JSON.stringify(text)}: expected KEY=VALUE or KEY-`);
    return { remove: key };
  }
  return { set: parseLabel('label')(text) };
}

export function labelsUpdate(changes: ReturnType<typeof parseLabelChange>[]): DeviceLabelsUpdate {
  const set = keyValueRecord('label', changes.flatMap((c) => (c.set ? [c.set] : [])));
  const remove = changes.flatMap((c) => (c.remove ? [c.remove] : []));
  const both = remove.filter((k) => Object.hasOwn(set, k));
  if (both.length) throw inputError(`label ${both[0]} is both set and removed`);
  if (!Object.keys(set).length && !remove.length) throw inputError('give at least one label change: KEY=VALUE to set, KEY- to remove');
  return { ...(Object.keys(set).length ? { set } : {}), ...(remove.length ? { remove } : {}) };
}

export function addDeviceCommands(program: Command, io: CliIo): void {
  const device = program.command('device').description('devices: enrollment, labels, status');

  device
    .command('enroll')
    .description('enroll a device; its token is shown only once')
    .argument('<id>', 'device id', parseDeviceId('device id'))
    .option('--label <key=value>', 'label the device; repeat for several', repeatable(parseLabel('--label')))
    .action(
      clientAction<[string], { label?: KeyValue[] }>(io, async (ctx, [id], flags) => {
        const labels = keyValueRecord('--label', flags.label ?? []);
        const d = await ctx.client.call('enrollDevice', { body: { id, labels } });
        ctx.out.result(d, () => renderEnrolled(d));
      }),
    );

  withWatchOptions(
    device
      .command('list')
      .description('list devices')
      .option('--label <key=value>', 'only devices with this label; repeat to require several', repeatable(parseLabel('--label')))
      .option('--status <status>', DEVICE_STATUSES.join(', '), parseChoice('--status', DEVICE_STATUSES)),
  ).action(
    clientAction<[], { label?: KeyValue[]; status?: DeviceStatus } & WatchFlags>(io, async (ctx, _args, flags) => {
      const query = { label: (flags.label ?? []).map(keyValueText), status: flags.status };
      await showList(ctx, flags, 'edgeml device list', () => ctx.client.call('listDevices', { query }), (list) => renderDeviceList(list.devices));
    }),
  );

  device
    .command('show')
    .description('show a device: status, labels, facts, and the services it runs with their model versions and replicas (ready/desired)')
    .argument('<id>', 'device id', parseDeviceId('device id'))
    .action(
      clientAction<[string], object>(io, async (ctx, [id]) => {
        // --json stays the hub's device record (scripts read its reported `services`); the resolved
        // services table costs one more request, made only for people.
        const [d, services] = await Promise.all([
          ctx.client.call('getDevice', { params: { id } }),
          ctx.out.json ? [] : ctx.client.call('listDeviceServices', { params: { id } }).then((r) => r.services),
        ]);
        ctx.out.result(d, () => renderDevice(d, services));
      }),
    );

  device
    .command('label')
    .description('set (KEY=VALUE) or remove (KEY-) labels')
    .argument('<id>', 'device id', parseDeviceId('device id'))
    .argument('<changes...>', 'KEY=VALUE to set, KEY- to remove')
    .action(
      clientAction<[string, string[]], object>(io, async (ctx, [id, changes]) => {
        const body = labelsUpdate(changes.map(parseLabelChange));
        const d = await ctx.client.call('updateDeviceLabels', { params: { id }, body });
        ctx.out.result(d, () => `device ${d.id}: ${formatPairs(d.labels) || '(no labels)'}`);
      }),
    );

  addGraceOption(
    device
      .command('rotate-token')
      .description('give a device a new token (printed once); the old one keeps working for --grace, then only the new one')
      .argument('<id>', 'device id', parseDeviceId('device id')),
    'token',
  ).action(
    clientAction<[string], { grace: string }>(io, async (ctx, [id], flags) => {
      const d = await ctx.client.call('rotateDeviceToken', { params: { id }, body: { grace: flags.grace } });
      ctx.out.result({ id: d.id, token: d.token, previousValidUntil: d.previousValidUntil }, () =>
        renderRotated(`device ${d.id}: its new token (give it to the agent, e.g. in its --token-file):`, d.token, 'token', d.previousValidUntil),
      );
    }),
  );

  device
    .command('revoke')
    .description('revoke a device: its token stops working and it is disconnected')
    .argument('<id>', 'device id', parseDeviceId('device id'))
    .action(
      clientAction<[string], object>(io, async (ctx, [id]) => {
        const d = await ctx.client.call('revokeDevice', { params: { id } });
        ctx.out.result(d, () => `revoked device ${d.id}`);
      }),
    );

  addClientOptions(device);
}
