/**
 * State resolution v2 / v2.1 (src/kernel/state-res): the shared ruma fixtures through resolveState and
 * resolveDag directly, property tests on generated rooms, and unit tests of the orderings.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  authEventTypes, checkAuth, compareCodePoints, resolveDag, resolveState, roomVersion, splitStateKey, stateKey,
  type PDU, type RoomVersionRules, type StateMap,
} from '../src/kernel/index.ts';
import { authDifference, conflictedStateSubgraph, powerEventGraph } from '../src/kernel/state-res/auth-graph.ts';
import {
  comparePowerSortKeys, mainlinePositions, mainlineSort, reverseTopologicalPowerSort, type PowerSortKey,
} from '../src/kernel/state-res/ordering.ts';
import { loadKernelFixtures } from './helpers/fixtures.ts';

// ---- helpers ----------------------------------------------------------------------------------------

type Triple = [string, string, string];

/** A state map from event ids, keyed by each event's (type, state_key). */
function stateOf(ids: Iterable<string>, byId: ReadonlyMap<string, PDU>): StateMap {
  const m: StateMap = new Map();
  for (const id of ids) {
    const e = byId.get(id);
    if (!e || typeof e.state_key !== 'string') throw new Error(`${id} is not a known state event`);
    m.set(stateKey(e.type, e.state_key), id);
  }
  return m;
}

/** The contract's output: [type, state_key, event_id] sorted by type, then state_key (code points). */
function triples(state: StateMap): Triple[] {
  const rows = [...state].map(([k, id]): Triple => [...splitStateKey(k), id]);
  return rows.sort((a, b) => compareCodePoints(a[0], b[0]) || compareCodePoints(a[1], b[1]));
}

function indexEvents(events: readonly PDU[]): Map<string, PDU> {
  return new Map(events.map((e) => [e.event_id!, e]));
}

function rulesOfRoom(events: readonly PDU[]): RoomVersionRules {
  const create = events.find((e) => e.type === 'm.room.create')!;
  return roomVersion(String(create.content.room_version ?? '1'))!;
}

// ---- shared fixtures --------------------------------------------------------------------------------

interface ResolveFixture {
  input: { events: PDU[]; state_sets?: string[][] };
  expect: { state: Triple[] };
}

describe('shared fixtures: resolve (resolveState)', () => {
  const fixtures = loadKernelFixtures('resolve');
  it('are all present', () => expect(fixtures.length).toBeGreaterThanOrEqual(9));
  for (const fx of fixtures) {
    it(fx.file, () => {
      const { input, expect: want } = fx as unknown as ResolveFixture;
      const byId = indexEvents(input.events);
      const sets = input.state_sets!.map((ids) => stateOf(ids, byId));
      const rules = rulesOfRoom(input.events);
      const got = resolveState(sets, (id) => byId.get(id), rules);
      expect(triples(got)).toEqual(want.state);
      // The order of the state sets does not matter.
      expect(triples(resolveState([...sets].reverse(), (id) => byId.get(id), rules))).toEqual(want.state);
    });
  }
});

describe('shared fixtures: resolve-dag (resolveDag)', () => {
  const fixtures = loadKernelFixtures('resolve-dag');
  it('are all present', () => expect(fixtures.length).toBeGreaterThanOrEqual(7));
  for (const fx of fixtures) {
    it(fx.file, () => {
      const { input, expect: want } = fx as unknown as ResolveFixture;
      const { state, rejected } = resolveDag(input.events);
      expect(triples(state)).toEqual(want.state);
      expect([...rejected]).toEqual([]);
      // Neither does the order of the events.
      expect(triples(resolveDag([...input.events].reverse()).state)).toEqual(want.state);
    });
  }
});

// ---- generated rooms --------------------------------------------------------------------------------

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface GeneratedRoom {
  rules: RoomVersionRules;
  events: PDU[];
  /** The state after each fork's last event (every fork event authorised against its fork's state). */
  forkStates: StateMap[];
}

/**
 * A small room: a common history (create, admin join, power levels, public join rules, some joins), then
 * `forks` linear forks of up to `steps` random state events each, every one authorised (by the auth rules
 * module) against its fork's state and citing the auth events selection of that state. With `rogue`,
 * some unauthorised events are added too (extremities that a DAG must reject). Timestamps collide often.
 */
function generateRoom(seed: number, opts: { version: string; forks: number; steps: number; rogue?: boolean }): GeneratedRoom {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const rules = roomVersion(opts.version)!;
  const v12 = rules.auth.roomIdFromCreateEvent;
  const admin = '@admin:hs0';
  const users = [admin, '@mod:hs1', '@bob:hs1', '@carol:hs2', '@dan:hs2', '@eve:hs3'];
  const events: PDU[] = [];
  let n = 0;
  const newId = () => `$${(Math.floor(rnd() * 1e9) + n++ * 1e9).toString(36)}`; // unique; order unrelated to creation
  let roomId = '!room:hs0';
  let createId = '';

  interface Fork {
    state: Map<string, PDU>;
    tip: string;
  }
  const lookupIn = (f: Fork) => (type: string, key: string) => f.state.get(stateKey(type, key));

  type Draft = Pick<PDU, 'type' | 'sender' | 'state_key' | 'content'>;
  function emit(f: Fork, ev: Draft, mode: 'valid' | 'rogue' | 'try'): boolean {
    const pdu: PDU = {
      ...ev,
      event_id: newId(),
      room_id: roomId,
      origin_server_ts: Math.floor(rnd() * 4),
      prev_events: [f.tip],
      auth_events: [],
    };
    pdu.auth_events = authEventTypes(pdu, rules)
      .map(([t, k]) => f.state.get(stateKey(t, k))?.event_id)
      .filter((x): x is string => x !== undefined);
    const allowed = checkAuth(pdu, lookupIn(f), rules).allowed;
    if (mode === 'valid' && !allowed) throw new Error(`generator: ${pdu.type} ${pdu.state_key} not allowed`);
    if (mode === 'try' && !allowed) return false;
    if (mode === 'rogue' && allowed) return false;
    events.push(pdu);
    if (allowed) {
      f.state.set(stateKey(pdu.type, pdu.state_key!), pdu);
      f.tip = pdu.event_id!;
    }
    return true;
  }

  // Common history.
  const createContent: PDU['content'] = { room_version: rules.id };
  if (!rules.auth.useRoomCreateSender) createContent.creator = admin;
  const create: PDU = {
    event_id: newId(),
    sender: admin,
    type: 'm.room.create',
    state_key: '',
    content: createContent,
    origin_server_ts: 0,
    prev_events: [],
    auth_events: [],
  };
  if (v12) roomId = `!${create.event_id!.slice(1)}`;
  else create.room_id = roomId;
  createId = create.event_id!;
  events.push(create);
  const common: Fork = { state: new Map([[stateKey('m.room.create', ''), create]]), tip: createId };
  const member = (u: string, membership: string) => ({ type: 'm.room.member', sender: u, state_key: u, content: { membership } });
  emit(common, member(admin, 'join'), 'valid');
  const plUsers: Record<string, number> = v12 ? { '@mod:hs1': 50 } : { [admin]: 100, '@mod:hs1': 50 };
  emit(common, { type: 'm.room.power_levels', sender: admin, state_key: '', content: { users: plUsers } }, 'valid');
  emit(common, { type: 'm.room.join_rules', sender: admin, state_key: '', content: { join_rule: 'public' } }, 'valid');
  for (const u of users.slice(1)) if (rnd() < 0.85 || u === '@mod:hs1') emit(common, member(u, 'join'), 'valid');

  const forks: Fork[] = Array.from({ length: opts.forks }, () => ({ state: new Map(common.state), tip: common.tip }));
  for (let step = 0; step < opts.steps; step++) {
    for (const f of forks) {
      for (let attempt = 0; attempt < 20; attempt++) {
        const sender = pick(users);
        const target = pick(users);
        const kind = pick(['pl', 'topic', 'ban', 'kick', 'join', 'leave', 'invite', 'jr', 'name'] as const);
        let ev: Draft;
        if (kind === 'pl') {
          const cur = f.state.get(stateKey('m.room.power_levels', ''))!.content;
          const u = { ...(cur.users as Record<string, number>) };
          if (!(v12 && target === admin)) u[target] = pick([0, 25, 50, 75]);
          ev = { type: 'm.room.power_levels', sender, state_key: '', content: { ...cur, users: u, ...(rnd() < 0.3 ? { kick: pick([25, 50, 75]) } : {}) } };
        } else if (kind === 'topic' || kind === 'name') {
          ev = { type: `m.room.${kind}`, sender, state_key: '', content: { [kind]: `${kind} ${n}` } };
        } else if (kind === 'jr') {
          ev = { type: 'm.room.join_rules', sender, state_key: '', content: { join_rule: pick(['public', 'invite']) } };
        } else if (kind === 'join' || kind === 'leave') {
          ev = member(sender, kind);
        } else {
          ev = { type: 'm.room.member', sender, state_key: target, content: { membership: kind === 'kick' ? 'leave' : kind } };
        }
        const mode = opts.rogue && rnd() < 0.15 ? 'rogue' : 'try';
        if (emit(f, ev, mode) && mode === 'try') break;
      }
    }
  }
  const forkStates = forks.map((f) => new Map([...f.state].map(([k, e]) => [k, e.event_id!])));
  return { rules, events, forkStates };
}

const VERSIONS = ['10', '11', '12'] as const;
const roomArb = fc.record({
  seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  version: fc.constantFrom(...VERSIONS),
  forks: fc.integer({ min: 2, max: 3 }),
  steps: fc.integer({ min: 1, max: 8 }),
});

function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const rnd = mulberry32(seed);
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe('properties on generated rooms', () => {
  it('the generator makes conflicted rooms in every version', () => {
    for (const version of VERSIONS) {
      const room = generateRoom(7, { version, forks: 2, steps: 8 });
      const [a, b] = room.forkStates;
      expect([...a].some(([k, v]) => b.get(k) !== v)).toBe(true);
    }
  });

  it('resolution does not depend on the order of the state sets', () => {
    fc.assert(
      fc.property(roomArb, fc.integer(), ({ seed, version, forks, steps }, order) => {
        const room = generateRoom(seed, { version, forks, steps });
        const byId = indexEvents(room.events);
        const lookup = (id: string) => byId.get(id);
        const a = resolveState(room.forkStates, lookup, room.rules);
        const b = resolveState(shuffled(room.forkStates, order), lookup, room.rules);
        expect(triples(b)).toEqual(triples(a));
      }),
      { numRuns: 150 },
    );
  });

  it('resolving one state set returns it; resolving copies of one state set returns it', () => {
    fc.assert(
      fc.property(roomArb, ({ seed, version, forks, steps }) => {
        const room = generateRoom(seed, { version, forks, steps });
        const byId = indexEvents(room.events);
        const lookup = (id: string) => byId.get(id);
        const s = room.forkStates[0];
        expect(triples(resolveState([s], lookup, room.rules))).toEqual(triples(s));
        expect(triples(resolveState([s, new Map(s), s], lookup, room.rules))).toEqual(triples(s));
      }),
      { numRuns: 100 },
    );
  });

  it('unconflicted keys come through unchanged, and every key of some state set is resolved', () => {
    fc.assert(
      fc.property(roomArb, ({ seed, version, forks, steps }) => {
        const room = generateRoom(seed, { version, forks, steps });
        const byId = indexEvents(room.events);
        const got = resolveState(room.forkStates, (id) => byId.get(id), room.rules);
        const [first, ...rest] = room.forkStates;
        for (const [k, v] of first) if (rest.every((s) => s.get(k) === v)) expect(got.get(k)).toBe(v);
        // Each resolved event is a state event under its own key.
        for (const [k, id] of got) {
          const e = byId.get(id)!;
          expect(stateKey(e.type, e.state_key!)).toBe(k);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('every event as its own state set, in any order, resolves the same', () => {
    fc.assert(
      fc.property(roomArb, fc.integer(), ({ seed, version, forks, steps }, order) => {
        const room = generateRoom(seed, { version, forks, steps });
        const byId = indexEvents(room.events);
        const lookup = (id: string) => byId.get(id);
        const atomic = room.events.map((e) => stateOf([e.event_id!], byId));
        const a = resolveState(atomic, lookup, room.rules);
        const b = resolveState(shuffled(atomic, order), lookup, room.rules);
        expect(triples(b)).toEqual(triples(a));
      }),
      { numRuns: 100 },
    );
  });

  it('resolveDag does not depend on the order of the events array, and rejects exactly the unauthorised events', () => {
    fc.assert(
      fc.property(roomArb, fc.integer(), ({ seed, version, forks, steps }, order) => {
        const room = generateRoom(seed, { version, forks, steps, rogue: true });
        const a = resolveDag(room.events);
        const b = resolveDag(shuffled(room.events, order));
        expect(triples(b.state)).toEqual(triples(a.state));
        expect([...b.rejected].sort()).toEqual([...a.rejected].sort());
        // The generator's unauthorised events are not in any fork state; every rejected event is one of them.
        const accepted = new Set(room.forkStates.flatMap((s) => [...s.values()]));
        for (const id of a.rejected) expect(accepted.has(id)).toBe(false);
        for (const id of a.state.values()) expect(a.rejected.has(id)).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it('resolveDag of forks without rejected events equals resolveState of the fork states', () => {
    fc.assert(
      fc.property(roomArb, ({ seed, version, forks, steps }) => {
        const room = generateRoom(seed, { version, forks, steps });
        const byId = indexEvents(room.events);
        const dag = resolveDag(room.events);
        expect([...dag.rejected]).toEqual([]);
        expect(triples(dag.state)).toEqual(triples(resolveState(room.forkStates, (id) => byId.get(id), room.rules)));
      }),
      { numRuns: 100 },
    );
  });
});

// ---- orderings --------------------------------------------------------------------------------------

describe('reverse topological power ordering', () => {
  const key = (eventId: string, power: number, originServerTs: number): PowerSortKey => ({ eventId, power, originServerTs });

  it('compares by greater sender power, then smaller origin_server_ts, then smaller event_id', () => {
    expect(comparePowerSortKeys(key('$b', 100, 9), key('$a', 50, 1))).toBeLessThan(0);
    expect(comparePowerSortKeys(key('$b', 50, 1), key('$a', 50, 2))).toBeLessThan(0);
    expect(comparePowerSortKeys(key('$a', 50, 1), key('$b', 50, 1))).toBeLessThan(0);
    expect(comparePowerSortKeys(key('$a', 50, 1), key('$a', 50, 1))).toBe(0);
    expect(comparePowerSortKeys(key('$a', Infinity, 5), key('$b', 100, 1))).toBeLessThan(0);
  });

  it('compares event ids by code point', () => {
    // U+FF21 is a larger code unit than the surrogates of U+1F600, but a smaller code point.
    expect(comparePowerSortKeys(key('$\uFF21', 0, 0), key('$\u{1F600}', 0, 0))).toBeLessThan(0);
  });

  it("picks the smallest candidate at each step of Kahn's algorithm", () => {
    const details = new Map<string, PowerSortKey>([
      ['$create', key('$create', 0, 0)],
      ['$low', key('$low', 0, 1)],
      ['$high', key('$high', 100, 5)],
      ['$early', key('$early', 50, 2)],
      ['$late', key('$late', 50, 3)],
      ['$x', key('$x', 50, 3)],
    ]);
    const graph = new Map<string, string[]>([
      ['$create', []],
      ['$low', ['$create']],
      ['$high', ['$create']],
      ['$early', ['$create']],
      ['$late', ['$create']],
      ['$x', ['$create']],
    ]);
    expect(reverseTopologicalPowerSort(graph, (id) => details.get(id)!)).toEqual(['$create', '$high', '$early', '$late', '$x', '$low']);
  });

  it('never puts an event before its auth events, whatever their power', () => {
    const details = new Map<string, PowerSortKey>([
      ['$a', key('$a', 0, 10)],
      ['$b', key('$b', 100, 0)], // cites $a
      ['$c', key('$c', 50, 0)],
    ]);
    const graph = new Map<string, string[]>([
      ['$a', []],
      ['$b', ['$a']],
      ['$c', []],
    ]);
    expect(reverseTopologicalPowerSort(graph, (id) => details.get(id)!)).toEqual(['$c', '$a', '$b']);
  });
});

describe('mainline ordering', () => {
  const rules = roomVersion('10')!;
  const ev = (id: string, type: string, auth: string[], ts: number): PDU => ({
    event_id: id, room_id: '!r:x', sender: '@a:x', type, state_key: '', content: {}, origin_server_ts: ts, auth_events: auth,
  });
  // Power levels chain p1 <- p2 <- p3; p2b forks from p1.
  const events = [
    ev('$create', 'm.room.create', [], 0),
    ev('$p1', 'm.room.power_levels', ['$create'], 1),
    ev('$p2', 'm.room.power_levels', ['$create', '$p1'], 2),
    ev('$p3', 'm.room.power_levels', ['$create', '$p2'], 3),
    ev('$p2b', 'm.room.power_levels', ['$create', '$p1'], 4),
    ev('$t-on-p3', 'm.room.topic', ['$create', '$p3'], 5),
    ev('$t-on-p2', 'm.room.topic', ['$create', '$p2'], 9),
    ev('$t-on-p2b', 'm.room.topic', ['$create', '$p2b'], 6),
    ev('$t-none', 'm.room.topic', ['$create'], 7),
    ev('$u-on-p2', 'm.room.name', ['$create', '$p2'], 9),
  ];
  const byId = indexEvents(events);
  const lookup = (id: string) => byId.get(id);
  void rules;

  it('positions: the index on the mainline of the nearest power levels ancestor, or ∞', () => {
    const pos = mainlinePositions('$p3', lookup);
    expect(pos(byId.get('$t-on-p3')!)).toBe(0);
    expect(pos(byId.get('$t-on-p2')!)).toBe(1);
    expect(pos(byId.get('$t-on-p2b')!)).toBe(2); // p2b is off the mainline; its parent p1 is P2
    expect(pos(byId.get('$t-none')!)).toBe(Infinity);
    expect(pos(byId.get('$p3')!)).toBe(1); // the event itself is not on its own list
  });

  it('sorts by greater position first, then origin_server_ts, then event_id', () => {
    const ids = ['$t-on-p3', '$u-on-p2', '$t-on-p2', '$t-on-p2b', '$t-none'];
    expect(mainlineSort(ids, '$p3', lookup)).toEqual(['$t-none', '$t-on-p2b', '$t-on-p2', '$u-on-p2', '$t-on-p3']);
    expect(mainlineSort([...ids].reverse(), '$p3', lookup)).toEqual(['$t-none', '$t-on-p2b', '$t-on-p2', '$u-on-p2', '$t-on-p3']);
  });

  it('without a power levels event every position is ∞: ordered by origin_server_ts then event_id', () => {
    expect(mainlineSort(['$t-on-p3', '$u-on-p2', '$t-on-p2'], undefined, lookup)).toEqual(['$t-on-p3', '$t-on-p2', '$u-on-p2']);
  });
});

// ---- MSC4297 "Problem B" (ruma's msc4297_problem_b_* tests, MIT; not among the shared fixtures) ----------

/**
 * Eve's state has the first power levels event, Zara's the third; the second is only in their auth
 * chains. v2.0 leaves the second out of the full conflicted set, so the first wins (a reset); v2.1 adds it
 * through the conflicted state subgraph and keeps the third.
 */
function problemB(version: '11' | '12'): { events: PDU[]; sets: string[][] } {
  const v12 = version === '12';
  const roomId = v12 ? '!00-m-room-create' : '!room:example.com';
  const creator = '@alice:example.com';
  const rows: [string, string, string, PDU['content'], string[], string[]][] = [
    ['$00-m-room-create', creator, 'm.room.create', { room_version: version }, [], []],
    ['$00-m-room-member-join-alice', creator, 'm.room.member', { membership: 'join' }, ['$00-m-room-create'], []],
    ['$00-m-room-power_levels', creator, 'm.room.power_levels', { users: v12 ? {} : { [creator]: 100 } }, ['$00-m-room-member-join-alice'], ['$00-m-room-member-join-alice']],
    ['$00-m-room-join_rules', creator, 'm.room.join_rules', { join_rule: 'public' }, ['$00-m-room-power_levels'], ['$00-m-room-member-join-alice', '$00-m-room-power_levels']],
    ['$00-m-room-member-join-bob', '@bob:example.com', 'm.room.member', { membership: 'join' }, ['$00-m-room-join_rules'], ['$00-m-room-power_levels', '$00-m-room-join_rules']],
    ['$00-m-room-member-join-charlie', '@charlie:example.com', 'm.room.member', { membership: 'join' }, ['$00-m-room-member-join-bob'], ['$00-m-room-power_levels', '$00-m-room-join_rules']],
    ['$01-m-room-power_levels', creator, 'm.room.power_levels', { users: { ...(v12 ? {} : { [creator]: 100 }), '@bob:example.com': 50 } }, ['$00-m-room-member-join-charlie'], ['$00-m-room-power_levels', '$00-m-room-member-join-alice']],
    ['$02-m-room-power_levels', '@bob:example.com', 'm.room.power_levels', { users: { ...(v12 ? {} : { [creator]: 100 }), '@bob:example.com': 50, '@charlie:example.com': 50 } }, ['$01-m-room-power_levels'], ['$01-m-room-power_levels', '$00-m-room-member-join-bob']],
    ['$00-m-room-member-join-zara', '@zara:example.com', 'm.room.member', { membership: 'join' }, ['$02-m-room-power_levels'], ['$02-m-room-power_levels', '$00-m-room-join_rules']],
    ['$00-m-room-member-join-eve', '@eve:example.com', 'm.room.member', { membership: 'join' }, ['$02-m-room-power_levels'], ['$02-m-room-power_levels', '$00-m-room-join_rules']],
    ['$01-m-room-member-change-display-name-eve', '@eve:example.com', 'm.room.member', { displayname: 'eve++', membership: 'join' }, ['$00-m-room-member-join-eve'], ['$02-m-room-power_levels', '$00-m-room-member-join-eve', '$00-m-room-join_rules']],
  ];
  const events = rows.map(([event_id, sender, type, content, prev, auth], i): PDU => {
    const ev: PDU = { event_id, sender, type, content, origin_server_ts: i, prev_events: prev, auth_events: auth };
    ev.state_key = type === 'm.room.member' ? sender : '';
    if (type === 'm.room.create') {
      if (!v12) ev.room_id = roomId;
    } else {
      ev.room_id = roomId;
      // Before v12 every event cites the create event.
      if (!v12) ev.auth_events = ['$00-m-room-create', ...auth.filter((a) => a !== '$00-m-room-create')];
      else ev.auth_events = auth.filter((a) => a !== '$00-m-room-create');
    }
    return ev;
  });
  events[10].origin_server_ts = 9; // as in the source
  const common = ['$00-m-room-create', '$00-m-room-member-join-alice', '$00-m-room-join_rules', '$00-m-room-member-join-bob', '$00-m-room-member-join-charlie'];
  return {
    events,
    sets: [
      [...common, '$00-m-room-power_levels', '$01-m-room-member-change-display-name-eve'],
      [...common, '$02-m-room-power_levels', '$00-m-room-member-join-zara'],
    ],
  };
}

describe('MSC4297 problem B: the conflicted state subgraph', () => {
  for (const [version, pl] of [['11', '$00-m-room-power_levels'], ['12', '$02-m-room-power_levels']] as const) {
    it(`room version ${version} resolves the power levels to ${pl}`, () => {
      const { events, sets } = problemB(version);
      const byId = indexEvents(events);
      const rules = roomVersion(version)!;
      const got = resolveState(sets.map((ids) => stateOf(ids, byId)), (id) => byId.get(id), rules);
      expect(triples(got)).toEqual([
        ['m.room.create', '', '$00-m-room-create'],
        ['m.room.join_rules', '', '$00-m-room-join_rules'],
        ['m.room.member', '@alice:example.com', '$00-m-room-member-join-alice'],
        ['m.room.member', '@bob:example.com', '$00-m-room-member-join-bob'],
        ['m.room.member', '@charlie:example.com', '$00-m-room-member-join-charlie'],
        ['m.room.member', '@eve:example.com', '$01-m-room-member-change-display-name-eve'],
        ['m.room.member', '@zara:example.com', '$00-m-room-member-join-zara'],
        ['m.room.power_levels', '', pl],
      ]);
    });
  }
});

// ---- the auth graph ---------------------------------------------------------------------------------

describe('auth difference and conflicted state subgraph', () => {
  const ev = (id: string, auth: string[]): PDU => ({ event_id: id, sender: '@a:x', type: 't', state_key: id, content: {}, auth_events: auth });
  //   c1 -> x -> y -> c2 -> r ; c1 -> side ; u -> y
  const events = [ev('$r', []), ev('$c2', ['$r']), ev('$y', ['$c2']), ev('$x', ['$y']), ev('$c1', ['$x', '$side']), ev('$side', ['$r']), ev('$u', ['$y'])];
  const byId = indexEvents(events);
  const lookup = (id: string) => byId.get(id);

  it('the subgraph holds the paths between conflicted events, not side branches', () => {
    expect([...conflictedStateSubgraph(new Set(['$c1', '$c2']), lookup)].sort()).toEqual(['$c1', '$c2', '$x', '$y']);
    // A lone conflicted event is only its own (trivial) path.
    expect([...conflictedStateSubgraph(new Set(['$c1']), lookup)]).toEqual(['$c1']);
  });

  it('X holds the power events and the events of their whole auth chains in the full conflicted set', () => {
    // $c1 stands for a power event; $x is outside the full conflicted set, $y and $c2 inside.
    const g = powerEventGraph(['$c1'], new Set(['$c1', '$y', '$c2', '$u']), lookup);
    expect([...g.keys()].sort()).toEqual(['$c1', '$c2', '$y']);
    // The sorting graph keeps the auth edges between events of X.
    expect(g.get('$c1')).toEqual([]);
    expect(g.get('$y')).toEqual(['$c2']);
    expect(g.get('$c2')).toEqual([]);
  });

  it('the auth difference is the union of the full auth chains minus their intersection', () => {
    // S1 = {u, c1}, S2 = {u, c2}: C1 = {y, c2, r, x, side}, C2 = {y, c2, r} ∪ {r}.
    expect([...authDifference(['$u'], [['$c1'], ['$c2']], lookup)].sort()).toEqual(['$side', '$x']);
    // Without u: C2 = {r}, so y and c2 differ too.
    expect([...authDifference([], [['$c1'], ['$c2']], lookup)].sort()).toEqual(['$c2', '$side', '$x', '$y']);
  });
});

// ---- rejection --------------------------------------------------------------------------------------

describe('rejected events', () => {
  const room = (version: string) => generateRoom(11, { version, forks: 1, steps: 0 });

  it('resolveDag rejects an event that fails auth against the state before it, and those citing it', () => {
    for (const version of VERSIONS) {
      const { events, rules, forkStates } = room(version);
      const byId = indexEvents(events);
      const state = forkStates[0];
      const pl = state.get(stateKey('m.room.power_levels', ''))!;
      const roomId = events[1].room_id;
      const tip = events[events.length - 1].event_id!;
      const auth = (sender: string) => [
        ...(rules.auth.roomIdFromCreateEvent ? [] : [state.get(stateKey('m.room.create', ''))!]),
        pl,
        ...(state.has(stateKey('m.room.member', sender)) ? [state.get(stateKey('m.room.member', sender))!] : []),
      ];
      // The moderator (level 50) raises their own level to 100: fails against the state before it.
      const plContent = byId.get(pl)!.content;
      const rogue: PDU = {
        event_id: '$rogue', room_id: roomId, sender: '@mod:hs1', type: 'm.room.power_levels', state_key: '',
        content: { ...plContent, users: { ...(plContent.users as object), '@mod:hs1': 100 } },
        origin_server_ts: 99, prev_events: [tip], auth_events: auth('@mod:hs1'),
      };
      // An admin event citing the rejected power levels among its auth events is rejected too.
      const cites: PDU = {
        event_id: '$cites', room_id: roomId, sender: '@admin:hs0', type: 'm.room.name', state_key: '',
        content: { name: 'y' }, origin_server_ts: 100, prev_events: ['$rogue'],
        auth_events: auth('@admin:hs0').map((id) => (id === pl ? '$rogue' : id)),
      };
      const fine: PDU = {
        event_id: '$fine', room_id: roomId, sender: '@admin:hs0', type: 'm.room.topic', state_key: '',
        content: { topic: 'ok' }, origin_server_ts: 101, prev_events: ['$cites'], auth_events: auth('@admin:hs0'),
      };
      const r = resolveDag([...events, rogue, cites, fine]);
      expect([...r.rejected].sort()).toEqual(['$cites', '$rogue']);
      expect(r.state.get(stateKey('m.room.topic', ''))).toBe('$fine');
      expect(r.state.has(stateKey('m.room.name', ''))).toBe(false);
      expect(r.state.get(stateKey('m.room.power_levels', ''))).toBe(pl);
      expect(r.reasons.get('$cites')).toMatch(/rejected/);
    }
  });

  it('resolveState skips events marked rejected in the iterative auth checks', () => {
    const { events, rules, forkStates } = room('11');
    const byId = indexEvents(events);
    const state = forkStates[0];
    const base = {
      room_id: events[1].room_id, sender: '@admin:hs0', type: 'm.room.topic', state_key: '', prev_events: [],
      auth_events: [state.get(stateKey('m.room.create', ''))!, state.get(stateKey('m.room.power_levels', ''))!, state.get(stateKey('m.room.member', '@admin:hs0'))!],
    };
    const t1: PDU = { ...base, event_id: '$t1', content: { topic: '1' }, origin_server_ts: 1 };
    const t2: PDU = { ...base, event_id: '$t2', content: { topic: '2' }, origin_server_ts: 2 };
    byId.set('$t1', t1).set('$t2', t2);
    const lookup = (id: string) => byId.get(id);
    const sets = [new Map([...state, [stateKey('m.room.topic', ''), '$t1']]), new Map([...state, [stateKey('m.room.topic', ''), '$t2']])];
    expect(resolveState(sets, lookup, rules).get(stateKey('m.room.topic', ''))).toBe('$t2');
    expect(resolveState(sets, lookup, rules, { isRejected: (id) => id === '$t2' }).get(stateKey('m.room.topic', ''))).toBe('$t1');
  });
});

describe('resolveState edge cases', () => {
  const rules = roomVersion('11')!;
  it('no state sets resolve to the empty state; the result is a new map', () => {
    expect(resolveState([], () => undefined, rules).size).toBe(0);
    const s: StateMap = new Map([[stateKey('m.room.create', ''), '$c']]);
    const r = resolveState([s], () => undefined, rules);
    expect(r).not.toBe(s);
    expect([...r]).toEqual([...s]);
  });
  it('resolveDag of no events is the empty state; without rules it needs the create event', () => {
    const r = resolveDag([]);
    expect(r.state.size).toBe(0);
    expect(r.rejected.size).toBe(0);
    const topic: PDU = { event_id: '$t', room_id: '!r:x', sender: '@a:x', type: 'm.room.topic', state_key: '', content: {} };
    expect(() => resolveDag([topic])).toThrow(/m\.room\.create/);
    // With the rules given, an event whose auth events are missing is rejected.
    expect([...resolveDag([topic], rules).rejected]).toEqual(['$t']);
  });
  it('refuses room versions whose rules name state resolution v1', () => {
    expect(() => resolveState([new Map(), new Map()], () => undefined, roomVersion('1')!)).toThrow(/v1/);
  });
});
