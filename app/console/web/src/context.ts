// What every view gets: who is signed in, where the tree starts, the display mode, and
// small shared pieces (error boxes, debouncers).

import { ApiError, Change } from "./api";
import { h } from "./dom";
import { Claims } from "./jwt";
import { t } from "./i18n";

export interface Ctx {
  claims: Claims;
  rootId: string; // the token's jurisdiction (or the topology root)
  screen: boolean; // big-screen mode
}

export interface View {
  el: HTMLElement;
  onChange?(c: Change): void;
  onResync?(): void;
  dispose?(): void;
}

export function canAct(ctx: Ctx): boolean {
  return ctx.claims.role === "leader" || ctx.claims.role === "staff";
}

export function errorText(e: unknown): string {
  if (e instanceof ApiError) {
    return e.code && !e.code.startsWith("HTTP_") ? `${e.code}: ${e.message}` : e.message || t("httpError");
  }
  return e instanceof Error ? e.message : String(e);
}

export function errorBox(e: unknown, testid?: string): HTMLElement {
  return h("p", { class: "error", role: "alert", "data-testid": testid }, `${t("nodeSays")}${errorText(e)}`);
}

// Runs `fn` at most once per `ms`, never two at once; calls made while one runs are
// folded into one more run after it.
export class Coalescer {
  private timer: number | undefined;
  private running = false;
  private again = false;

  constructor(
    private readonly ms: number,
    private readonly fn: () => Promise<void>,
  ) {}

  kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer !== undefined) return;
    this.timer = window.setTimeout(() => void this.run(), this.ms);
  }

  private async run(): Promise<void> {
    this.timer = undefined;
    this.running = true;
    try {
      await this.fn();
    } catch {
      /* the view shows its own errors */
    }
    this.running = false;
    if (this.again) {
      this.again = false;
      this.kick();
    }
  }

  cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.again = false;
  }
}
