// Words both sides show the user: the server in hovers, lenses and progress, the client in its
// notifications and log. No imports.

/** 4 ms, 0.4 s, 12 s, 2 min 10 s: a duration as precise as a reader needs it. */
export function formatSeconds(s: number): string {
  if (s < 0.1) return `${Math.max(1, Math.round(s * 1000))} ms`;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 120) return `${Math.round(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}
