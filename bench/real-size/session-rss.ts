// What one ONNX session costs in resident memory on the CPU provider, in a fresh process: the
// figures behind FP16_ON_CPU in server/model/memory.ts (and the README's *Full-size models*).
//
//   node --import tsx bench/real-size/session-rss.ts ~/.cache/adadiff/full-size/sd15-fp16/unet/model.onnx
//
// Prints the file's size (with the external data it names), its float16 weights, and the growth of VmRSS after
// the session is created and of VmHWM (the peak while loading), each also over the file size.
import { readFileSync, statSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { externalDataFiles } from '../../server/model/folder';
import { memoryNeed } from '../../server/model/memory';
import { sessionOptions } from '../../server/model/session';

const GB = 1024 ** 3;
const status = () => {
  const text = readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string) => Number(text.match(new RegExp(`${key}:\\s+(\\d+)`))![1]) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
};

async function main(file: string): Promise<void> {
  // The sizes the memory check counts: the graph with the external data it names, and its float16 share.
  const { fileBytes: bytes, float16Bytes: float16 } = await memoryNeed([{ onnx: file, externalData: await externalDataFiles(file, statSync(file).size) }]);
  const before = status();
  const session = await ort.InferenceSession.create(file, { ...sessionOptions('shared'), executionProviders: ['cpu'] });
  const after = status();
  const grew = after.rss - before.rss;
  const peak = after.peak - before.rss;
  console.log(
    `${file}: ${(bytes / GB).toFixed(2)} GB (${(float16 / GB).toFixed(2)} GB float16); RSS +${(grew / GB).toFixed(2)} GB (${(grew / bytes).toFixed(2)}x) after loading, peak +${(peak / GB).toFixed(2)} GB (${(peak / bytes).toFixed(2)}x)`,
  );
  await session.release();
}

main(process.argv[2]).catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
