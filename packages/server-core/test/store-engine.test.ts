import { describe, expect, it } from 'vitest';
import { engineConformance } from '../src/store/engine-conformance.ts';
import { MemoryEngine } from '../src/store/memory-engine.ts';

engineConformance('MemoryEngine', async (migrations) => new MemoryEngine(migrations), { describe, it, expect });
