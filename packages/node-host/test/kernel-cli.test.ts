/**
 * Every shared kernel fixture, through the real command line (`npm run -s kernel -- <command>`),
 * as independent conformance suites drive it.
 */
import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadKernelFixtures, mismatch, stdinOf } from '../../server-core/test/helpers/fixtures.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

function runCli(args: string[], stdin: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn('npm', ['run', '-s', 'kernel', '--', ...args], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', rej);
    child.on('close', (code) => res({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

const fixtures = loadKernelFixtures();

describe('kernel CLI: shared fixtures', { concurrent: true, timeout: 120_000 }, () => {
  it('finds the fixtures', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(59);
  });
  for (const fx of fixtures) {
    it(fx.file, async () => {
      const r = await runCli([fx.command], stdinOf(fx));
      if (fx.expect_exit !== undefined) {
        expect(r.code, r.stderr).toBe(fx.expect_exit);
        if (fx.expect_exit === 2) expect(r.stderr.trim().split('\n')).toHaveLength(1);
        return;
      }
      expect(r.code, r.stderr).toBe(0);
      expect(mismatch(fx, r.stdout)).toBeUndefined();
    });
  }
});

describe('kernel CLI: contract', { concurrent: true, timeout: 60_000 }, () => {
  it('refuses non-JSON input with exit 2 and one line', async () => {
    const r = await runCli(['redact'], '{not json');
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
  it('refuses an unknown command with exit 2', async () => {
    const r = await runCli(['frobnicate'], '{}');
    expect(r.code).toBe(2);
  });
  it('refuses an unknown room version with exit 2', async () => {
    const r = await runCli(['redact'], JSON.stringify({ event: { type: 'm.room.message', sender: '@a:b', content: {} }, room_version: '99' }));
    expect(r.code).toBe(2);
  });
  it('refuses lone surrogates in canonical', async () => {
    const r = await runCli(['canonical'], '{"a":"\\ud800"}');
    expect(r.code).toBe(2);
  });
});
