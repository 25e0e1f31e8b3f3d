/**
 * Stored records the hub skips because they no longer validate: it serves the rest of the fleet
 * and reports them here (and as `degraded` in `/healthz`) instead of refusing to start.
 */
import { Type, type Static } from '@sinclair/typebox';
import { stringEnum } from '../schema.js';

/** `deployment`: a service devices would refuse; `desired`: a device's stored desired state; `device`: a device record. */
export const PROBLEM_KINDS = ['deployment', 'desired', 'device'] as const;
export type ProblemKind = (typeof PROBLEM_KINDS)[number];

export const Problem = Type.Object({
  kind: stringEnum(PROBLEM_KINDS),
  /** The record's id: a service name or a device id. */
  id: Type.String(),
  message: Type.String({ description: 'what does not validate' }),
});
export type Problem = Static<typeof Problem>;

export const ProblemList = Type.Object({ problems: Type.Array(Problem) });
export type ProblemList = Static<typeof ProblemList>;
