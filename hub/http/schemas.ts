/** REST body schemas shared by several routes. */
import { Type } from '@sinclair/typebox';
import { DeviceFacts } from '../../shared/protocol.js';

export const ErrorBody = Type.Object(
  { error: Type.Object({ code: Type.String(), message: Type.String() }) },
  { $id: 'ErrorBody', description: 'Every error answer has this shape.' },
);

export const Device = Type.Object({
  id: Type.String(),
  state: Type.Union([Type.Literal('online'), Type.Literal('offline')]),
  offlineReason: Type.Union([Type.Literal('shutdown'), Type.Literal('lost'), Type.Null()]),
  onlineSince: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  lastSeen: Type.String({ format: 'date-time' }),
  facts: Type.Union([DeviceFacts, Type.Null()]),
});
