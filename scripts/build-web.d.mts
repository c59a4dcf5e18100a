export function needsBuild(): boolean;
export function ensureWebBuild(opts?: { force?: boolean; quiet?: boolean }): boolean;
export function buildTestPages(opts?: { quiet?: boolean }): void;
