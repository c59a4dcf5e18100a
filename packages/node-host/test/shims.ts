/**
 * The one place for whatever matrix-js-sdk needs on Node 20 that Node 20 lacks; imported first by
 * `js-sdk.test.ts`.
 *
 * matrix-js-sdk 37.5.0 is the newest release whose `engines` allows Node 20 (37.6.0 and later ask for
 * Node >= 22). Its compiled `lib/` uses none of the Node 22 additions (`Promise.withResolvers`,
 * `Object.groupBy`, `Array.fromAsync`, the new `Set` methods, iterator helpers, `URL.parse`), so on
 * Node 20.20 no shim is needed: `fetch`, `AbortSignal.any`, `structuredClone`, `crypto.randomUUID`
 * and `Blob` are all global there. `indexedDB` and `localStorage` are absent, which is fine: the
 * tests give the SDK its `MemoryStore` and never start its crypto (`initRustCrypto`); `navigator` is
 * only touched by the SDK's WebRTC code, which the tests do not use.
 *
 * If a later SDK version needs something, add it here, guarded (`if (!('x' in y))`), with the
 * version that needs it.
 */
export {};
