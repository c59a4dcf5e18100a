import type { Server } from 'node:http';

export const MIME: Record<string, string>;

export interface StaticServer {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

export function serveStatic(opts: {
  root: string;
  mounts?: Record<string, string>;
  host?: string;
  port?: number;
  log?: (line: string) => void;
}): Promise<StaticServer>;
