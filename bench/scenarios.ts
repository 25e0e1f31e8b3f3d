/** Every benchmark `npm run bench` runs, in this order. */
import type { Scenario } from './lib/scenario.js';

export const SCENARIOS: Scenario[] = [];
