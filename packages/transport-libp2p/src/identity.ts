/**
 * A node's identity is its ed25519 key: the Matrix server name is the lowercase hex of the public key
 * (server-core's `serverNameOf`), and the libp2p PeerId is derived from the same key. These helpers map
 * between the three, in both directions, without network or storage.
 */
import { generateKeyPairFromSeed, publicKeyFromRaw } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey, peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id';
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface';

const SERVER_NAME = /^[0-9a-f]{64}$/;

/** The libp2p private key of a node whose ed25519 seed (32 bytes, server-core's `meta.signing_seed`) is `seed`. */
export async function privateKeyFromSeed(seed: Uint8Array): Promise<Ed25519PrivateKey> {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new TypeError('seed: expected 32 bytes (an ed25519 seed)');
  return generateKeyPairFromSeed('Ed25519', seed);
}

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function isServerName(s: string): boolean {
  return SERVER_NAME.test(s);
}

/** The PeerId of a server (its name is the hex of its ed25519 public key). Throws on anything else. */
export function peerIdFromServerName(serverName: string): PeerId {
  if (!isServerName(serverName)) throw new TypeError(`not a matrix-p2p server name: ${serverName.slice(0, 80)}`);
  return peerIdFromPublicKey(publicKeyFromRaw(fromHex(serverName)));
}

/** The server name of a peer, or undefined when its key is not ed25519 (then it is no matrix-p2p node). */
export function serverNameFromPeerId(peerId: PeerId | string): string | undefined {
  const id = typeof peerId === 'string' ? peerIdFromString(peerId) : peerId;
  if (id.type !== 'Ed25519' || id.publicKey == null) return undefined;
  return toHex(id.publicKey.raw);
}

/** Server name and PeerId of the node with ed25519 seed `seed`. */
export async function identityFromSeed(seed: Uint8Array): Promise<{ privateKey: Ed25519PrivateKey; peerId: PeerId; serverName: string }> {
  const privateKey = await privateKeyFromSeed(seed);
  const peerId = peerIdFromPrivateKey(privateKey);
  return { privateKey, peerId, serverName: toHex(privateKey.publicKey.raw) };
}
