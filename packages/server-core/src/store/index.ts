export * from './engine.ts';
export * from './records.ts';
export { MIGRATIONS } from './schema.ts';
export { MemoryEngine } from './memory-engine.ts';
export { Store, WriteBatch } from './store.ts';
export type { AliasRecord } from './rooms.ts';
export type { PresenceRecord } from './user-data.ts';
export type { DeviceKeysRecord, OneTimeKeyRecord, FallbackKeyRecord, CrossSigningKeyRecord } from './keys.ts';
