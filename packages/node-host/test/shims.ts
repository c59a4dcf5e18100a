/**
 * What matrix-js-sdk 37.5.0 needs on Node 20 that Node 20 lacks. Imported first by the SDK tests.
 * (Kept in this one module: when the project moves to Node 22 it can go.)
 */
export {};
