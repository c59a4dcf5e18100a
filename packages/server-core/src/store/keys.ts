/** End-to-end encryption material: device keys, one-time and fallback keys, cross-signing, to-device inboxes, device list changes, key backup. */
import type { JsonObject } from '../kernel/types.ts';
import type { ReadTx, StorageEngine } from './engine.ts';
import { prefixRange } from './engine.ts';
import type { ToDeviceRecord } from './records.ts';

export interface DeviceKeysRecord {
  userId: string;
  deviceId: string;
  keys: JsonObject;
}
export interface OneTimeKeyRecord {
  userId: string;
  deviceId: string;
  algorithm: string;
  keyId: string;
  key: JsonObject | string;
}
export interface FallbackKeyRecord {
  userId: string;
  deviceId: string;
  algorithm: string;
  keyId: string;
  key: JsonObject | string;
  used: boolean;
}
export interface CrossSigningKeyRecord {
  userId: string;
  keyType: 'master' | 'self_signing' | 'user_signing';
  key: JsonObject;
}
/** A signature uploaded through `keys/signatures/upload` on a device key (`keyId` = device id) or a cross-signing key (`keyId` = its public key). */
export interface KeySignatureRecord {
  userId: string;
  keyId: string;
  signerUserId: string;
  signerKeyId: string;
  signature: string;
}
/** A key backup version. Versions are decimal strings; deleted ones stay (as tombstones) so numbers are never reused. */
export interface RoomKeyVersionRecord {
  userId: string;
  version: string;
  algorithm: string;
  authData: JsonObject;
  etag: string;
  deleted?: boolean;
}
/** One backed-up megolm session (`data` is the spec's KeyBackupData). */
export interface RoomKeyRecord {
  userId: string;
  version: string;
  roomId: string;
  sessionId: string;
  data: { first_message_index: number; forwarded_count: number; is_verified: boolean; session_data: JsonObject };
}

export class KeysStore {
  constructor(private readonly engine: StorageEngine) {}

  deviceKeys(userId: string, deviceId?: string): Promise<DeviceKeysRecord[]> {
    return this.engine.read((tx) => tx.query<DeviceKeysRecord>('device_keys', { range: deviceId === undefined ? prefixRange(userId) : prefixRange(userId, deviceId) }));
  }
  oneTimeKeys(userId: string, deviceId: string, algorithm?: string): Promise<OneTimeKeyRecord[]> {
    return this.engine.read((tx) =>
      tx.query<OneTimeKeyRecord>('one_time_keys', { range: algorithm === undefined ? prefixRange(userId, deviceId) : prefixRange(userId, deviceId, algorithm) }),
    );
  }
  fallbackKeys(userId: string, deviceId: string): Promise<FallbackKeyRecord[]> {
    return this.engine.read((tx) => tx.query<FallbackKeyRecord>('fallback_keys', { range: prefixRange(userId, deviceId) }));
  }
  crossSigningKeys(userId: string): Promise<CrossSigningKeyRecord[]> {
    return this.engine.read((tx) => tx.query<CrossSigningKeyRecord>('cross_signing_keys', { range: prefixRange(userId) }));
  }
  toDevice(userId: string, deviceId: string, afterStream: number, limit = 100): Promise<ToDeviceRecord[]> {
    return this.engine.read((tx) =>
      tx.query<ToDeviceRecord>('to_device', { range: { lower: [userId, deviceId, afterStream], upper: [userId, deviceId, Infinity], lowerOpen: true }, limit }),
    );
  }
  /** To-device messages at or before a position (to delete once acknowledged). */
  toDeviceUpTo(userId: string, deviceId: string, stream: number): Promise<ToDeviceRecord[]> {
    return this.engine.read((tx) => tx.query<ToDeviceRecord>('to_device', { range: { lower: [userId, deviceId, -Infinity], upper: [userId, deviceId, stream] } }));
  }
  /** To-device messages in (afterStream, upTo], oldest first. */
  toDeviceBetween(userId: string, deviceId: string, afterStream: number, upTo: number, limit = 100): Promise<ToDeviceRecord[]> {
    return this.engine.read((tx) =>
      tx.query<ToDeviceRecord>('to_device', { range: { lower: [userId, deviceId, afterStream], upper: [userId, deviceId, upTo], lowerOpen: true }, limit }),
    );
  }
  /** How many to-device messages wait at or before a position. */
  toDeviceCountUpTo(userId: string, deviceId: string, stream: number): Promise<number> {
    return this.engine.read((tx) => tx.count('to_device', { range: { lower: [userId, deviceId, -Infinity], upper: [userId, deviceId, stream] } }));
  }
  /** Unclaimed one-time keys of a device, counted per algorithm. */
  async oneTimeKeyCounts(userId: string, deviceId: string): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const k of await this.oneTimeKeys(userId, deviceId)) counts[k.algorithm] = (counts[k.algorithm] ?? 0) + 1;
    return counts;
  }
  oneTimeKey(userId: string, deviceId: string, algorithm: string, keyId: string): Promise<OneTimeKeyRecord | undefined> {
    return this.engine.read((tx) => tx.get<OneTimeKeyRecord>('one_time_keys', [userId, deviceId, algorithm, keyId]));
  }
  fallbackKey(userId: string, deviceId: string, algorithm: string): Promise<FallbackKeyRecord | undefined> {
    return this.engine.read((tx) => tx.get<FallbackKeyRecord>('fallback_keys', [userId, deviceId, algorithm]));
  }
  /** Signatures uploaded on one key of a user (every key of the user when `keyId` is left out). */
  signatures(userId: string, keyId?: string): Promise<KeySignatureRecord[]> {
    return this.engine.read((tx) => tx.query<KeySignatureRecord>('key_signatures', { range: keyId === undefined ? prefixRange(userId) : prefixRange(userId, keyId) }));
  }
  /** Every backup version of a user, tombstones included, in numeric order. */
  async backupVersions(userId: string): Promise<RoomKeyVersionRecord[]> {
    const rows = await this.engine.read((tx) => tx.query<RoomKeyVersionRecord>('room_key_versions', { range: prefixRange(userId) }));
    return rows.sort((a, b) => Number(a.version) - Number(b.version));
  }
  backupVersion(userId: string, version: string): Promise<RoomKeyVersionRecord | undefined> {
    return this.engine.read((tx) => tx.get<RoomKeyVersionRecord>('room_key_versions', [userId, version]));
  }
  /** The current backup: the newest version not deleted. */
  async currentBackup(userId: string): Promise<RoomKeyVersionRecord | undefined> {
    const all = await this.backupVersions(userId);
    for (let i = all.length - 1; i >= 0; i--) if (!all[i].deleted) return all[i];
    return undefined;
  }
  /** Backed-up keys of a version, optionally of one room or one session. */
  roomKeys(userId: string, version: string, roomId?: string, sessionId?: string): Promise<RoomKeyRecord[]> {
    const prefix: string[] = [userId, version];
    if (roomId !== undefined) prefix.push(roomId);
    if (roomId !== undefined && sessionId !== undefined) prefix.push(sessionId);
    const range = sessionId !== undefined && roomId !== undefined ? { lower: prefix, upper: prefix } : prefixRange(...prefix);
    return this.engine.read((tx) => tx.query<RoomKeyRecord>('room_keys', { range }));
  }
  roomKeyCount(userId: string, version: string): Promise<number> {
    return this.engine.read((tx) => tx.count('room_keys', { range: prefixRange(userId, version) }));
  }
  /** Users whose device lists changed after `stream`. */
  async deviceListChangesSince(stream: number, upTo = Infinity): Promise<Set<string>> {
    const rows = await this.engine.read((tx) => tx.query<{ stream: number; userId: string }>('device_list_changes', { range: { lower: stream, upper: upTo, lowerOpen: true } }));
    return new Set(rows.map((r) => r.userId));
  }
  read<T>(fn: (tx: ReadTx) => Promise<T>): Promise<T> {
    return this.engine.read(fn);
  }
}
