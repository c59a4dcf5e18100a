#!/usr/bin/env node
// `npm run build:test-page -w @matrix-p2p/transport-libp2p [outDir]`: the e2e test page (default dist/p2p-test).
import { join } from 'node:path';
import { buildTestPage, PACKAGE_DIR } from './bundle.mjs';

const out = process.argv[2] ?? join(PACKAGE_DIR, '../../dist/p2p-test');
await buildTestPage(out);
console.log(`test page built in ${out}`);
