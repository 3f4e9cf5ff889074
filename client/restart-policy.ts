// How often the client restarts a language server that crashed: as vscode-languageclient's default
// error handler (4 restarts within 3 minutes, then it gives up), but kept here so that the status
// item can say which restart this was and, when they are spent, that the server stays stopped.
// No VS Code import: the unit tests run it as it is.

export const MAX_RESTARTS = 4;
export const RESTART_WINDOW_MS = 3 * 60_000;

export interface CrashVerdict {
  /** Crashes within the window, this one included. */
  crashes: number;
  /** False once the crashes within the window exceed maxRestarts: the server stays stopped. */
  restart: boolean;
  maxRestarts: number;
  windowMs: number;
}

export class RestartPolicy {
  private crashes: number[] = [];

  constructor(
    readonly maxRestarts = MAX_RESTARTS,
    readonly windowMs = RESTART_WINDOW_MS,
  ) {}

  /** Records a crash at `now` (ms) and says whether to restart. */
  crashed(now = Date.now()): CrashVerdict {
    this.crashes = [...this.crashes.filter((t) => now - t < this.windowMs), now];
    const crashes = this.crashes.length;
    return { crashes, restart: crashes <= this.maxRestarts, maxRestarts: this.maxRestarts, windowMs: this.windowMs };
  }
}
