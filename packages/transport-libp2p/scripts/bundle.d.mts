export const PACKAGE_DIR: string;
export const BROWSER_OPTIONS: Record<string, unknown>;
export function buildTestPage(outDir: string, opts?: { minify?: boolean }): Promise<string>;
