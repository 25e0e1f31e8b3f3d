/** Every benchmark `npm run bench` runs, in this order (issue 8's numbering; overload-replicas is issue 15's, cli-startup issue 19's). */
import { scenario as agentFootprint } from './agent-footprint.js';
import { scenario as build } from './build.js';
import { scenario as cliStartup } from './cli-startup.js';
import { scenario as gatewayOverhead } from './gateway-overhead.js';
import type { Scenario } from './lib/scenario.js';
import { scenario as overload } from './overload.js';
import { scenario as overloadReplicas } from './overload-replicas.js';
import { scenario as rolloutScale } from './rollout-scale.js';
import { scenario as telemetryIngest } from './telemetry-ingest.js';

export const SCENARIOS: Scenario[] = [telemetryIngest, gatewayOverhead, overload, overloadReplicas, agentFootprint, rolloutScale, build, cliStartup];
