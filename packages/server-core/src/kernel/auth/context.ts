/**
 * Shared plumbing of the rules: results, the state view of one check, event ids.
 */
import { eventIdOf } from '../events.ts';
import type { RoomVersionRules } from '../room-versions.ts';
import type { AuthResult, JsonObject, PDU } from '../types.ts';
import { getOwn, isObject } from './ids.ts';
import { currentPowerLevels, userPowerLevel, type ParsedPowerLevels } from './power-levels.ts';
import type { CheckAuthOptions, StateLookup } from './types.ts';

export const ALLOW: AuthResult = Object.freeze({ allowed: true }) as AuthResult;
export function deny(reason: string): AuthResult {
  return { allowed: false, reason };
}

/** A value for a rejection reason: JSON, cut short. */
export function show(v: unknown): string {
  const s = v === undefined ? 'undefined' : JSON.stringify(v);
  return s.length > 40 ? s.slice(0, 37) + '...' : s;
}

/** The id an `EventRef` names, or undefined for a malformed entry. */
export function safeRefId(ref: unknown): string | undefined {
  if (typeof ref === 'string') return ref;
  if (Array.isArray(ref) && typeof ref[0] === 'string') return ref[0];
  return undefined;
}

const idCache: Record<string, WeakMap<object, string | undefined>> = {};

/** The event's id: the hook if given, else `eventIdOf` (cached per event object). Never throws. */
export function eventIdFor(event: PDU, rules: RoomVersionRules, options: CheckAuthOptions): string | undefined {
  try {
    if (options.eventId) return options.eventId(event);
    if (typeof event.event_id === 'string') return event.event_id;
    const cache = (idCache[rules.eventIdFormat] ??= new WeakMap());
    if (cache.has(event)) return cache.get(event);
    let id: string | undefined;
    try {
      id = eventIdOf(event, rules);
    } catch {
      id = undefined;
    }
    cache.set(event, id);
    return id;
  } catch {
    return undefined;
  }
}

/** One authorization check's view of the room state, with memoised reads. */
export class AuthContext {
  private levels: ParsedPowerLevels | undefined | null = null;
  private readonly powerCache = new Map<string, number>();

  constructor(
    readonly event: PDU,
    readonly content: JsonObject,
    readonly lookup: StateLookup,
    readonly rules: RoomVersionRules,
    readonly create: PDU,
    readonly options: CheckAuthOptions,
  ) {}

  /** The current power levels (undefined when the room has no power levels event). */
  powerLevels(): ParsedPowerLevels | undefined {
    if (this.levels === null) this.levels = currentPowerLevels(this.lookup, this.rules);
    return this.levels;
  }

  /** A user's current power level (Infinity for v12 creators). */
  powerOf(userId: string): number {
    let n = this.powerCache.get(userId);
    if (n === undefined) {
      n = userPowerLevel(userId, this.lookup, this.rules);
      this.powerCache.set(userId, n);
    }
    return n;
  }

  /** A user's current membership, or undefined if they have no (well-formed) member event. */
  membershipOf(userId: string): string | undefined {
    const ev = this.lookup('m.room.member', userId);
    if (!ev) return undefined;
    const m = getOwn(ev.content, 'membership');
    return typeof m === 'string' ? m : undefined;
  }

  /**
   * The current join rule. No `m.room.join_rules` event, or one without `join_rule`, counts as
   * `invite` (the rules assume a join rule; Synapse and Ruma default to invite).
   */
  joinRule(): string | undefined {
    const ev = this.lookup('m.room.join_rules', '');
    if (!ev || !isObject(ev.content)) return 'invite';
    const jr = getOwn(ev.content, 'join_rule');
    if (jr === undefined) return 'invite';
    return typeof jr === 'string' ? jr : undefined;
  }

  createId(): string | undefined {
    return eventIdFor(this.create, this.rules, this.options);
  }
}

