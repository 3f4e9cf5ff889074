// A one-line progress bar on stderr when it is a terminal; silent otherwise, so piped output and
// CI logs stay clean.
export function progressBar(label: string): { update(done: number, total: number, note?: string): void; end(): void } {
  const tty = process.stderr.isTTY;
  const started = performance.now();
  return {
    update(done, total, note = '') {
      if (!tty) return;
      const width = 24;
      const filled = Math.round((done / Math.max(total, 1)) * width);
      const elapsed = (performance.now() - started) / 1000;
      const eta = done > 0 ? (elapsed / done) * (total - done) : 0;
      process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${elapsed.toFixed(1)}s eta ${eta.toFixed(1)}s ${note}\x1b[K`);
    },
    end() {
      if (tty) process.stderr.write('\n');
    },
  };
}
