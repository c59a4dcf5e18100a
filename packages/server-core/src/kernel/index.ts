/** The protocol kernel: pure functions, no I/O (architecture practice 3). */
export * from './types.ts';
export * from './room-versions.ts';
export * from './canonical-json.ts';
export * from './base64.ts';
export * from './crypto.ts';
export * from './signing.ts';
export * from './redaction.ts';
export * from './events.ts';
export * from './auth/index.ts';
export * from './state-res/index.ts';
export * from './directory-announcement.ts';
export { runKernelCommand, KERNEL_COMMANDS, type CommandResult } from './commands.ts';
