/** Accounts, devices and access tokens. */
import type { StorageEngine } from './engine.ts';
import { prefixRange } from './engine.ts';
import type { AccountRecord, DeviceRecord, TokenRecord } from './records.ts';

export class AccountsStore {
  constructor(private readonly engine: StorageEngine) {}

  get(userId: string): Promise<AccountRecord | undefined> {
    return this.engine.read((tx) => tx.get<AccountRecord>('accounts', userId));
  }
  /** Users whose id or display name contains the term (user directory search). */
  async search(term: string, limit: number): Promise<AccountRecord[]> {
    const t = term.toLowerCase();
    const all = await this.engine.read((tx) => tx.query<AccountRecord>('accounts'));
    return all.filter((a) => !a.deactivated && (a.userId.toLowerCase().includes(t) || a.displayname?.toLowerCase().includes(t))).slice(0, limit);
  }
  device(userId: string, deviceId: string): Promise<DeviceRecord | undefined> {
    return this.engine.read((tx) => tx.get<DeviceRecord>('devices', [userId, deviceId]));
  }
  devices(userId: string): Promise<DeviceRecord[]> {
    return this.engine.read((tx) => tx.query<DeviceRecord>('devices', { range: prefixRange(userId) }));
  }
  token(token: string): Promise<TokenRecord | undefined> {
    return this.engine.read((tx) => tx.get<TokenRecord>('access_tokens', token));
  }
  tokensOfDevice(userId: string, deviceId: string): Promise<TokenRecord[]> {
    return this.engine.read((tx) => tx.query<TokenRecord>('access_tokens', { index: 'by_device', range: { lower: [userId, deviceId], upper: [userId, deviceId] } }));
  }
}
