/**
 * State resolution v2 (room versions 2–11) and v2.1 (room version 12), and the state of a whole room DAG.
 * Spec: rooms/v2 "State resolution", rooms/v12 "State resolution" (MSC4297).
 */
export type { EventLookup } from './events.ts';
export { resolveState, type ResolveOptions } from './resolve.ts';
export { resolveDag, type DagResolution } from './dag.ts';
