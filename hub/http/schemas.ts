/** REST body schemas shared by several routes. */
import { Type } from '@sinclair/typebox';
import { DeviceFacts, OfflineReasons } from '../../shared/protocol.js';
import { stringEnum } from '../../shared/schema.js';

export const Device = Type.Object({
  id: Type.String(),
  state: stringEnum(['online', 'offline']),
  offlineReason: Type.Union([stringEnum(OfflineReasons), Type.Null()]),
  onlineSince: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  lastSeen: Type.String({ format: 'date-time' }),
  facts: Type.Union([DeviceFacts, Type.Null()]),
});
