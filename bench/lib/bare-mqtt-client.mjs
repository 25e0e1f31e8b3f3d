// The agent-footprint benchmark's floor: a bare Node process that only holds one MQTT connection,
// set up as the agent's (client id = username = device id, password = token, persistent session,
// QoS 1 subscriptions to `desired` and `cmd`, a retained last will), and does nothing else.
// Plain JavaScript on purpose, unlike the TypeScript workers beside it (run with `node --import tsx`):
// it is the floor of the agent's memory, and the agent is measured as it runs, compiled JS from dist/
// under plain `node`. tsx's loader (and the esbuild service it starts) would add to this process's
// RSS alone — about 35 MiB more for an idle script on the development machine (node 42 MiB, with
// `--import tsx` 78 MiB) — and make the floor look higher than any Node agent has to be.
//
//   BENCH_DEVICE_TOKEN=… node bench/lib/bare-mqtt-client.mjs mqtt://HOST:PORT DEVICE_ID
import mqtt from 'mqtt';

const [url, id] = process.argv.slice(2);
const token = process.env.BENCH_DEVICE_TOKEN;
if (!url || !id || !token) {
  process.stderr.write('usage: BENCH_DEVICE_TOKEN=… node bare-mqtt-client.mjs MQTT_URL DEVICE_ID\n');
  process.exit(2);
}
const topic = (channel) => `edgeml/v1/dev/${id}/${channel}`;
const client = mqtt.connect(url, {
  clientId: id,
  username: id,
  password: token,
  clean: false,
  protocolVersion: 4,
  keepalive: 30,
  reconnectPeriod: 1000,
  will: { topic: topic('status'), payload: JSON.stringify({ v: 1, state: 'offline', reason: 'lost' }), qos: 1, retain: true },
});
client.on('error', (err) => process.stderr.write(`bare client: ${err.message}\n`));
client.on('connect', () => {
  client.subscribe([topic('desired'), topic('cmd')], { qos: 1 }, (err) => {
    if (err) process.stderr.write(`bare client: subscribe: ${err.message}\n`);
    else process.stdout.write('connected\n');
  });
});
const stop = () => client.end(false, {}, () => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
