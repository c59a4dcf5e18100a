/** Per-user data: account data (global and per room), filters, push rules, presence, media. */
import type { JsonObject } from '../kernel/types.ts';
import type { StorageEngine } from './engine.ts';
import type { AccountDataRecord, MediaRecord } from './records.ts';

export interface PresenceRecord {
  userId: string;
  presence: string;
  statusMsg?: string;
  lastActiveTs: number;
  stream: number;
}

export class UserDataStore {
  constructor(private readonly engine: StorageEngine) {}

  accountData(userId: string, roomId: string, type: string): Promise<AccountDataRecord | undefined> {
    return this.engine.read((tx) => tx.get<AccountDataRecord>('account_data', [userId, roomId, type]));
  }
  /** Account data changed after `stream` (all of it for `stream` 0). */
  accountDataSince(userId: string, stream: number): Promise<AccountDataRecord[]> {
    return this.engine.read((tx) =>
      tx.query<AccountDataRecord>('account_data', { index: 'by_user_stream', range: { lower: [userId, stream], upper: [userId, Infinity], lowerOpen: true } }),
    );
  }
  filter(userId: string, filterId: string): Promise<JsonObject | undefined> {
    return this.engine.read(async (tx) => (await tx.get<{ filter: JsonObject }>('filters', [userId, filterId]))?.filter);
  }
  async pushRules<T>(userId: string): Promise<T | undefined> {
    return (await this.engine.read((tx) => tx.get<{ rules: T }>('push_rules', userId)))?.rules;
  }
  presence(userId: string): Promise<PresenceRecord | undefined> {
    return this.engine.read((tx) => tx.get<PresenceRecord>('presence', userId));
  }
  presenceSince(stream: number): Promise<PresenceRecord[]> {
    return this.engine.read((tx) => tx.query<PresenceRecord>('presence', { index: 'by_stream', range: { lower: stream, lowerOpen: true } }));
  }
  media(mediaId: string): Promise<MediaRecord | undefined> {
    return this.engine.read((tx) => tx.get<MediaRecord>('media', mediaId));
  }
}
