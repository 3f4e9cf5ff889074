// What a process holds, read from Linux /proc: resident memory, threads, open files, children.
// Undefined (or empty) elsewhere, so callers say "not measured" rather than fail.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessUse {
  rssMb: number;
  threads: number;
  openFiles: number;
}

export function processUse(pid: number): ProcessUse | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)![1]);
    return { rssMb: field('VmRSS') / 1024, threads: field('Threads'), openFiles: readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return undefined;
  }
}

/** Child process ids of `pid` (the language server's render worker). */
export function childPids(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return []; // ps exits 1 when there are none
  }
}
