/**
 * The kernel's command-line door: `npm run -s kernel -- <command>`, one JSON document on stdin, one
 * on stdout. Exit 0 on success, 2 (with one line on stderr) for input the operation must refuse.
 */
import { runKernelCommand, KERNEL_COMMANDS } from '@matrix-p2p/server-core';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const command = process.argv[2];
if (!command || command === '--help' || command === '-h') {
  process.stderr.write(`usage: npm run -s kernel -- <${KERNEL_COMMANDS.join('|')}> < input.json\n`);
  process.exit(command ? 0 : 2);
}
const result = await runKernelCommand(command, await readStdin());
if (result.ok) {
  process.stdout.write(result.output + '\n');
} else {
  process.stderr.write(result.message + '\n');
  process.exitCode = result.exitCode;
}
