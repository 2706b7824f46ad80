// The live feed: GET /api/watch as server-sent events, read with fetch() and a
// ReadableStream (not EventSource) so the token travels in the Authorization header,
// never in a URL. Reconnects with the last event id (Last-Event-ID) and exponential
// backoff; a 401 ends the session; OUT_OF_RANGE (the node's log no longer holds what
// follows our token) restarts from now and asks the views to reload everything.

import { ApiError, Change, authHeaders, errorFrom, handleAuthFailure } from "./api";

export type WatchStatus = "connecting" | "live" | "reconnecting" | "offline";

export interface WatchHandlers {
  onChange: (c: Change) => void;
  onStatus: (s: WatchStatus) => void;
  onResync: () => void; // the stream lost its place: re-fetch what is shown
}

export class Watch {
  private abort: AbortController | null = null;
  private lastId = "";
  private everOpen = false;
  private stopped = false;
  private backoffMs = 500;
  private timer: number | undefined;

  constructor(
    private readonly jurisdictionId: string,
    private readonly handlers: WatchHandlers,
  ) {}

  start(): void {
    this.stopped = false;
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.abort?.abort();
    this.abort = null;
    this.handlers.onStatus("offline");
  }

  private schedule(): void {
    if (this.stopped) return;
    this.handlers.onStatus("reconnecting");
    const wait = this.backoffMs + Math.random() * 250;
    this.backoffMs = Math.min(this.backoffMs * 2, 15000);
    this.timer = window.setTimeout(() => void this.run(), wait);
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    this.handlers.onStatus(this.lastId ? "reconnecting" : "connecting");
    const abort = new AbortController();
    this.abort = abort;
    const headers: Record<string, string> = { ...authHeaders(), Accept: "text/event-stream" };
    if (this.lastId) headers["Last-Event-ID"] = this.lastId;
    const url = `api/watch?jurisdictionId=${encodeURIComponent(this.jurisdictionId)}`;
    let res: Response;
    try {
      res = await fetch(url, { headers, signal: abort.signal, cache: "no-store" });
    } catch {
      this.schedule();
      return;
    }
    if (!res.ok || !res.body) {
      const err = res.ok ? new ApiError(500, "INTERNAL", "no body") : await errorFrom(res);
      handleAuthFailure(err);
      if (err.status === 401 || err.status === 403) {
        this.stopped = true;
        this.handlers.onStatus("offline");
        return;
      }
      this.schedule();
      return;
    }
    this.handlers.onStatus("live");
    // Back after a drop with no event id to resume from: what changed meanwhile is not
    // replayed, so the views re-read what they show.
    if (this.everOpen && !this.lastId) this.handlers.onResync();
    this.everOpen = true;
    let opened = Date.now();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    let ended: { code?: string; message?: string } | null = null;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        // Events end with a blank line (the gateway writes \n line ends; drop any \r).
        buf = buf.replace(/\r/g, "");
        let cut: number;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const ev = parseEvent(block);
          if (!ev) continue;
          if (ev.event === "error") {
            try {
              ended = JSON.parse(ev.data) as { code?: string; message?: string };
            } catch {
              ended = { code: "UNKNOWN", message: ev.data };
            }
            continue;
          }
          if (ev.id) this.lastId = ev.id;
          if (ev.event !== "change" || !ev.data) continue;
          try {
            const change = JSON.parse(ev.data) as Change;
            if (!ev.id && change.token) this.lastId = change.token;
            this.handlers.onChange(change);
          } catch {
            /* a malformed event is skipped; the next one carries on */
          }
        }
        if (buf.length > 4 << 20) throw new Error("event too large");
      }
    } catch {
      /* aborted or the connection dropped */
    }
    if (this.stopped) return;
    if (ended?.code === "UNAUTHENTICATED") {
      handleAuthFailure(new ApiError(401, ended.code, ended.message ?? ""));
      return;
    }
    // The node's log no longer holds what follows our token: start from now (the views
    // re-read what they show once the stream is back).
    if (ended?.code === "OUT_OF_RANGE") this.lastId = "";
    // A stream that stayed up a while earns a quick reconnect.
    if (Date.now() - opened > 10000) this.backoffMs = 500;
    opened = 0;
    this.schedule();
  }
}

interface SseEvent {
  id: string;
  event: string;
  data: string;
}

function parseEvent(block: string): SseEvent | null {
  let id = "";
  let event = "message";
  const data: string[] = [];
  let any = false;
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    any = true;
    if (field === "id") id = value;
    else if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return any ? { id, event, data: data.join("\n") } : null;
}
