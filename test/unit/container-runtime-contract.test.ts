/** The ContainerRuntime contract (test/helpers/container-runtime-contract.ts) against the fake the unit tests use. */
import { containerRuntimeContract } from '../helpers/container-runtime-contract.js';
import { FakeContainerRuntime, fakeHealthProbe, fakePorts } from '../helpers/fake-container-runtime.js';

const PLATFORM = 'linux/amd64';
const image = (name: string) => `reg.example/${name}@sha256:${'a'.repeat(64)}`;

containerRuntimeContract({
  name: 'fake',
  platform: PLATFORM,
  fixture: async () => {
    const runtime = new FakeContainerRuntime(PLATFORM);
    const images = { serving: image('serving'), exiting: image('exiting'), pullable: image('pullable'), missing: image('missing') };
    runtime.publish(images.serving, { size: 1234 });
    runtime.publish(images.exiting, { size: 1234, exitCode: 3 });
    runtime.publish(images.pullable, { size: 1234 });
    return { runtime, health: fakeHealthProbe(runtime), ports: fakePorts(), images };
  },
});
