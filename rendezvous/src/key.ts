/** The rendezvous' private key, kept in a file so its PeerId (and so its multiaddr) survives restarts. */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Load the key at `path` (libp2p's protobuf encoding, as go-libp2p and js-libp2p write it), or create an
 * ed25519 key there on first start (mode 0600, written atomically).
 */
export async function loadOrCreateKey(path: string): Promise<{ key: PrivateKey; created: boolean }> {
  try {
    return { key: privateKeyFromProtobuf(new Uint8Array(await readFile(path))), created: false };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read the rendezvous key ${path}: ${(e as Error).message}`);
  }
  const key = await generateKeyPair('Ed25519');
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, privateKeyToProtobuf(key), { mode: 0o600 });
  await rename(tmp, path);
  return { key, created: true };
}
