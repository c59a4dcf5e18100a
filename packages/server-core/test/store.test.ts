import { describe, expect, it } from 'vitest';
import { MemoryEngine } from '../src/store/memory-engine.ts';
import { storeConformance } from '../src/store/store-conformance.ts';

storeConformance('memory', async (m) => new MemoryEngine(m), { describe, it, expect });
