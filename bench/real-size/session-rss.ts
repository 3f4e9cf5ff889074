// What one ONNX session costs in resident memory on the CPU provider, in a fresh process: the
// figures behind FP16_ON_CPU in server/model/memory.ts (and the README's *Full-size models*).
//
//   node --import tsx bench/real-size/session-rss.ts ~/.cache/adadiff/full-size/sd15-fp16/unet/model.onnx
//
// Prints the file's size (with model.onnx_data), its float16 weights, and the growth of VmRSS after
// the session is created and of VmHWM (the peak while loading), each also over the file size.
import { readFileSync, statSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { sessionOptions } from '../../server/model/session';
import { weightTypes } from '../../server/onnx/weight-types';

const GB = 1024 ** 3;
const status = () => {
  const text = readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string) => Number(text.match(new RegExp(`${key}:\\s+(\\d+)`))![1]) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
};

async function main(file: string): Promise<void> {
  let bytes = statSync(file).size;
  try {
    bytes += statSync(`${file}_data`).size;
  } catch {
    // weights inside the graph file
  }
  const float16 = (await weightTypes(file)).bytes.float16 ?? 0;
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
