/**
 * Authenticated media: `<img>` cannot send an Authorization header, so media is fetched from
 * `/_matrix/client/v1/media/download/...` with the Bearer token and shown through a blob URL.
 * (If the authenticated endpoint is missing, the legacy `/_matrix/media/v3/download` path is tried.)
 */
import { parseMxc } from './format.ts';

export class MediaCache {
  private readonly urls = new Map<string, string>();
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    private readonly baseUrl: string,
    private readonly accessToken: () => string | null,
  ) {}

  /** The blob URL for an mxc URI if it is already loaded (so re-renders show it at once). */
  peek(mxc: string): string | undefined {
    return this.urls.get(mxc);
  }

  /** Load an mxc URI into a blob URL (cached; concurrent calls share one request). */
  load(mxc: string): Promise<string> {
    const done = this.urls.get(mxc);
    if (done) return Promise.resolve(done);
    let p = this.pending.get(mxc);
    if (!p) {
      p = this.fetchBlobUrl(mxc).finally(() => this.pending.delete(mxc));
      this.pending.set(mxc, p);
    }
    return p;
  }

  private async fetchBlobUrl(mxc: string): Promise<string> {
    const parts = parseMxc(mxc);
    if (!parts) throw new Error(`not an mxc URI: ${mxc}`);
    const path = `${encodeURIComponent(parts.server)}/${encodeURIComponent(parts.mediaId)}`;
    const base = this.baseUrl.replace(/\/+$/, '');
    const token = this.accessToken();
    let res = await fetch(`${base}/_matrix/client/v1/media/download/${path}`, {
      headers: token ? { Authorization: `Bearer ${token}` } : {},
    });
    if (res.status === 404 || res.status === 405) {
      const legacy = await fetch(`${base}/_matrix/media/v3/download/${path}`);
      if (legacy.ok) res = legacy;
    }
    if (!res.ok) throw new Error(`media download failed: HTTP ${res.status}`);
    const url = URL.createObjectURL(await res.blob());
    this.urls.set(mxc, url);
    return url;
  }

  /** Remember a local file under its new mxc URI (so our own uploads show without a download). */
  prime(mxc: string, blob: Blob): void {
    if (!this.urls.has(mxc)) this.urls.set(mxc, URL.createObjectURL(blob));
  }

  clear(): void {
    for (const url of this.urls.values()) URL.revokeObjectURL(url);
    this.urls.clear();
  }
}
