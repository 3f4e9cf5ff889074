// `npm run bench`: every benchmark prints its figures and ratios, measured side by side in one run,
// and the results land in bench/results.json. Benchmarks are not tests: nothing here asserts.
// `npm run bench -- eta editor-latency` runs only those sections and keeps the others' last figures;
// opt-in sections (real-size: full-size models, many minutes) run only when named.
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { benchEditorLatency } from './editor-latency';
import { benchEta } from './eta';
import { benchGeneration } from './generation';
import { benchMemory } from './memory';
import { benchPool } from './pool';
import { benchRealSize } from './real-size';
import { benchReliability } from './reliability';
import { benchSessionOptions } from './session-options';
import { benchTorch } from './torch';
import { loadAverage } from './util';

export interface BenchSection {
  name: string;
  /** Runs only when named (`npm run bench -- real-size`): it takes many minutes or needs files a checkout lacks. */
  optIn?: boolean;
  run(): Promise<Record<string, unknown>>;
}

const sections: BenchSection[] = [benchSessionOptions, benchGeneration, benchEta, benchEditorLatency, benchTorch, benchMemory, benchReliability, benchPool, benchRealSize];

async function main() {
  const only = process.argv.slice(2);
  const unknown = only.filter((name) => !sections.some((s) => s.name === name));
  if (unknown.length) throw new Error(`unknown section(s) ${unknown.join(', ')}; sections: ${sections.map((s) => s.name).join(', ')}`);
  const file = join(__dirname, 'results.json');
  const previous = only.length && existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const results: Record<string, unknown> = { ...previous, node: process.version, platform: `${process.platform}-${process.arch}`, cpu: `${cpus().length} x ${cpus()[0]?.model ?? 'unknown'}` };
  for (const section of sections) {
    if (only.length ? !only.includes(section.name) : section.optIn) {
      if (!only.length) console.log(`\n== ${section.name}: runs only when named (npm run bench -- ${section.name})`);
      continue;
    }
    console.log(`\n== ${section.name}`);
    const measuredAt = new Date().toISOString();
    const loadAverageAtStart = loadAverage();
    results[section.name] = { measuredAt, loadAverageAtStart, ...(await section.run()) };
  }
  await writeFile(file, JSON.stringify(results, null, 2) + '\n');
  console.log(`\nwrote ${file}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
