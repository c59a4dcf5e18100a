export function needsBuild(): boolean;
export function ensureWebBuild(opts?: { force?: boolean; quiet?: boolean }): boolean;
