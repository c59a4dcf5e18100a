/**
 * The object stores and indexes of the homeserver, declared once as an ordered list of migrations
 * (architecture practice 6). IndexedDB replays them on upgrade; the memory engine applies them all.
 * Append new migrations; never edit one that has shipped.
 */
import type { Migration } from './engine.ts';

export const MIGRATIONS: readonly Migration[] = [
  {
    createStores: {
      /** Singletons: stream position, server signing key, counters. `{key, value}` */
      meta: { keyPath: 'key' },
      /** `AccountRecord` by user id. */
      accounts: { keyPath: 'userId' },
      /** `DeviceRecord` by [userId, deviceId]. */
      devices: { keyPath: ['userId', 'deviceId'] },
      /** `TokenRecord` by access token hash. */
      access_tokens: { keyPath: 'token', indexes: { by_device: { keyPath: ['userId', 'deviceId'] } } },
      /** `StoredEvent` by event id. Timeline events have a `stream`; outliers do not. */
      events: {
        keyPath: 'eventId',
        indexes: {
          by_room_stream: { keyPath: ['roomId', 'stream'] },
          by_stream: { keyPath: 'stream' },
          by_relation: { keyPath: ['relatesTo', 'stream'] },
        },
      },
      /** Idempotency of client sends: `{userId, deviceId, txnId, eventId}`. */
      txns: { keyPath: ['userId', 'deviceId', 'txnId'] },
      /** `StateGroupRecord` by id: a room state as a delta over a previous group, or a full snapshot. */
      state_groups: { keyPath: 'id' },
      /** `RoomRecord` by room id. */
      rooms: { keyPath: 'roomId', indexes: { by_published: { keyPath: 'published' } } },
      /** `CurrentStateRecord` by [roomId, type, stateKey]. */
      current_state: { keyPath: ['roomId', 'type', 'stateKey'] },
      /** `MembershipRecord` by [userId, roomId]: every user's current membership of every room we know. */
      memberships: { keyPath: ['userId', 'roomId'], indexes: { by_room: { keyPath: ['roomId', 'membership'] }, by_stream: { keyPath: ['userId', 'stream'] } } },
      /** `AccountDataRecord` by [userId, roomId ('' = global), type]. */
      account_data: { keyPath: ['userId', 'roomId', 'type'], indexes: { by_user_stream: { keyPath: ['userId', 'stream'] } } },
      /** `FilterRecord` by [userId, filterId]. */
      filters: { keyPath: ['userId', 'filterId'] },
      /** `ReceiptRecord` by [roomId, receiptType, userId, threadId]. */
      receipts: { keyPath: ['roomId', 'receiptType', 'userId', 'threadId'], indexes: { by_room_stream: { keyPath: ['roomId', 'stream'] } } },
      /** Device keys `{userId, deviceId, keys, stream}`. */
      device_keys: { keyPath: ['userId', 'deviceId'] },
      /** One-time keys `{userId, deviceId, algorithm, keyId, key}`. */
      one_time_keys: { keyPath: ['userId', 'deviceId', 'algorithm', 'keyId'] },
      /** Fallback keys `{userId, deviceId, algorithm, keyId, key, used}`. */
      fallback_keys: { keyPath: ['userId', 'deviceId', 'algorithm'] },
      /** Cross-signing keys `{userId, keyType, key}`. */
      cross_signing_keys: { keyPath: ['userId', 'keyType'] },
      /** Signatures uploaded by others on keys: `{userId, keyId, signerUserId, signerKeyId, signature}`. */
      key_signatures: { keyPath: ['userId', 'keyId', 'signerUserId', 'signerKeyId'] },
      /** To-device inbox `{userId, deviceId, stream, message}`. */
      to_device: { keyPath: ['userId', 'deviceId', 'stream'] },
      /** Device list changes `{stream, userId}`. */
      device_list_changes: { keyPath: 'stream', indexes: { by_user: { keyPath: 'userId' } } },
      /** Local room aliases `{alias, roomId, creator, servers}`. */
      aliases: { keyPath: 'alias', indexes: { by_room: { keyPath: 'roomId' } } },
      /** Media `{mediaId, contentType, filename?, bytes, uploader, createdTs}`. */
      media: { keyPath: 'mediaId' },
      /** Push rules per user `{userId, rules}`. */
      push_rules: { keyPath: 'userId' },
      /** Presence `{userId, presence, statusMsg?, lastActiveTs, stream}`. */
      presence: { keyPath: 'userId', indexes: { by_stream: { keyPath: 'stream' } } },
      /** Key backup versions `{userId, version, algorithm, authData, etag, deleted?}`. */
      room_key_versions: { keyPath: ['userId', 'version'] },
      /** Backed-up room keys `{userId, version, roomId, sessionId, data}`. */
      room_keys: { keyPath: ['userId', 'version', 'roomId', 'sessionId'] },
      /** Outbound federation queue `{destination, seq, kind, payload}` (federation issue). */
      outbound: { keyPath: ['destination', 'seq'] },
    },
  },
  {
    // Events by room and depth: the deepest stored event of a room (Store.storedDepthBound).
    createIndexes: { events: { by_room_depth: { keyPath: ['roomId', 'depth'] } } },
  },
];
