/** Every shared kernel fixture, in-process through runKernelCommand (the CLI test runs them through the real CLI). */
import { describe, expect, it } from 'vitest';
import { runKernelCommand } from '../src/index.ts';
import { loadKernelFixtures, mismatch, stdinOf } from './helpers/fixtures.ts';

describe('kernel commands: shared fixtures', () => {
  for (const fx of loadKernelFixtures()) {
    it(fx.file, async () => {
      const r = await runKernelCommand(fx.command, stdinOf(fx));
      if (fx.expect_exit !== undefined) {
        expect(r.ok ? 0 : r.exitCode).toBe(fx.expect_exit);
        return;
      }
      expect(r.ok, r.ok ? '' : r.message).toBe(true);
      if (r.ok) expect(mismatch(fx, r.output)).toBeUndefined();
    });
  }
});
