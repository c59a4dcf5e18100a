import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { ed25519 } from '@noble/curves/ed25519.js';
import { multiaddr } from '@multiformats/multiaddr';
import { serverNameOf } from '@matrix-p2p/server-core';
import { describe, expect, it } from 'vitest';
import { createGater } from '../src/gater.ts';
import { identityFromSeed, isServerName, peerIdFromServerName, serverNameFromPeerId } from '../src/identity.ts';
import { FEDERATION_ORIGIN } from '../src/http/policy.ts';
import { FEDERATION_ORIGIN as CORE_ORIGIN } from '../../server-core/src/federation/transport.ts';

describe('identity', () => {
  it('the server name from a seed is server-core\'s, and the PeerId carries the same key', async () => {
    const seed = Uint8Array.from({ length: 32 }, (_, i) => i * 7);
    const { serverName, peerId } = await identityFromSeed(seed);
    expect(serverName).toBe(serverNameOf(ed25519.getPublicKey(seed)));
    expect(isServerName(serverName)).toBe(true);
    expect(serverNameFromPeerId(peerId)).toBe(serverName);
    expect(serverNameFromPeerId(peerId.toString())).toBe(serverName);
    expect(peerIdFromServerName(serverName).equals(peerId)).toBe(true);
  });

  it('refuses what is not a server name, and non-ed25519 peers have none', async () => {
    expect(() => peerIdFromServerName('example.org')).toThrow();
    expect(() => peerIdFromServerName('A'.repeat(64))).toThrow();
    const secp = peerIdFromPrivateKey(await generateKeyPair('secp256k1'));
    expect(serverNameFromPeerId(secp)).toBe(undefined);
    await expect(identityFromSeed(new Uint8Array(31))).rejects.toThrow();
  });

  it('the placeholder origin matches server-core\'s', () => {
    expect(FEDERATION_ORIGIN).toBe(CORE_ORIGIN);
  });
});

describe('connection gater', () => {
  const rv = multiaddr('/ip4/127.0.0.1/tcp/9090/ws/p2p/12D3KooWFpW2z3cDHuT4Dv4DnpYKDVAyLmWDotFjbf6PCnzGUc6m');
  const gater = createGater([rv]);
  const deny = (a: string) => gater.denyDialMultiaddr!(multiaddr(a));
  const peer = '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq';

  it('allows the rendezvous on loopback, and circuits through it', () => {
    expect(deny(rv.toString())).toBe(false);
    expect(deny('/ip4/127.0.0.1/tcp/9090/ws')).toBe(false);
    expect(deny(`${rv}/p2p-circuit/webrtc/p2p/${peer}`)).toBe(false);
    expect(deny(`${rv}/p2p-circuit/p2p/${peer}`)).toBe(false);
    expect(deny(`/webrtc/p2p/${peer}`)).toBe(false);
  });

  it('refuses private addresses and relays it was not configured with', () => {
    expect(deny('/ip4/192.168.1.1/tcp/80/ws')).toBe(true);
    expect(deny('/ip4/127.0.0.1/tcp/22/ws')).toBe(true);
    expect(deny(`/ip4/10.0.0.1/tcp/80/ws/p2p/${peer}/p2p-circuit/webrtc/p2p/${peer}`)).toBe(true);
    expect(deny('/dns4/example.org/tcp/443/wss')).toBe(false);
    expect(createGater([rv], { allowPrivate: true }).denyDialMultiaddr!(multiaddr('/ip4/192.168.1.1/tcp/80/ws'))).toBe(false);
  });
});
