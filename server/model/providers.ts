// Execution providers: which ones to try, in what order, and why one was not used. Each model part
// gets a session from the first provider in the list that can create one; the reasons the earlier
// ones failed are kept, because "why is this slow?" is answered by "CUDA is not installed: run X".

import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ProviderAttempt, ProviderChoice } from './contract';
import { AdaDiffError, errorText } from '../errors';

/**
 * GPU first, then the portable GPU path, then CPU, which always works. onnxruntime-node 1.30
 * bundles cpu + webgpu everywhere, DirectML on Windows and CoreML on macOS; CUDA is downloaded
 * separately on linux/x64 (see CUDA_INSTALL_COMMAND).
 */
export function defaultProviders(platform: NodeJS.Platform = process.platform): string[] {
  switch (platform) {
    case 'win32':
      return ['cuda', 'dml', 'webgpu', 'cpu'];
    case 'darwin':
      return ['coreml', 'webgpu', 'cpu'];
    default:
      return ['cuda', 'webgpu', 'cpu'];
  }
}

/**
 * onnxruntime-node's install script fetches the CUDA provider from NuGet. `npm ci` never runs it
 * (allowScripts denies it), so it is run by hand; the variable asks it for CUDA 12 explicitly,
 * where without a flag it would skip a project-local install.
 */
export const CUDA_INSTALL_COMMAND = 'ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install';

const BINARY_DIR = path.join(path.dirname(require.resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', process.platform, process.arch);

const PLATFORM_ONLY: Readonly<Record<string, string>> = {
  dml: 'DirectML is only available on Windows',
  coreml: 'CoreML is only available on macOS',
};

/**
 * Why a provider cannot work here, found without creating a session: a missing provider library
 * makes onnxruntime log a multi-line error to stderr before it throws a vague one, and a missing
 * Vulkan loader makes Dawn print a warning, so the cases we can see from the file system are
 * settled here with a message that says what to install. Undefined means "worth trying".
 */
export function providerUnavailableReason(name: string): string | undefined {
  const supported = ort.listSupportedBackends();
  const backend = supported.find((b) => b.name === name);
  if (!backend) {
    if (PLATFORM_ONLY[name]) return `${PLATFORM_ONLY[name]}, not on ${process.platform}`;
    return `unknown execution provider "${name}"; onnxruntime-node ${ort.env.versions.common} on ${process.platform}/${process.arch} offers ${supported.map((b) => b.name).join(', ')}`;
  }
  if (name === 'cuda' || name === 'tensorrt') {
    const libs = ['libonnxruntime_providers_shared.so', `libonnxruntime_providers_${name}.so`];
    const missing = libs.filter((lib) => !existsSync(path.join(BINARY_DIR, lib)));
    if (missing.length > 0) {
      return (
        `the ${name === 'cuda' ? 'CUDA' : 'TensorRT'} provider is not installed (${missing.join(', ')} missing from ${BINARY_DIR}); ` +
        `with internet access install it with: ${CUDA_INSTALL_COMMAND} (needs an NVIDIA driver, CUDA 12 and cuDNN 9)`
      );
    }
  }
  if (name === 'webgpu' && process.platform === 'linux' && !findLibrary('libvulkan.so.1')) {
    return 'WebGPU runs on Vulkan on Linux and libvulkan.so.1 was not found; install the Vulkan loader (Debian/Ubuntu: apt install libvulkan1) and a Vulkan driver (mesa-vulkan-drivers, or the NVIDIA driver)';
  }
  return undefined;
}

/** Adds what onnxruntime's own message leaves out when a provider that looked installed fails. */
function explainFailure(name: string, message: string): string {
  if ((name === 'cuda' || name === 'tensorrt') && /Failed to load shared library/i.test(message)) {
    return `${message} (the provider is installed but a library it needs did not load: check the NVIDIA driver, CUDA 12 and cuDNN 9 are installed and on the library path)`;
  }
  if (name === 'webgpu' && /adapter/i.test(message)) {
    // Seen on an H100 container with the loader but without libglvnd: the NVIDIA ICD loads yet
    // hands out no vkCreateInstance, and Dawn reports only that no adapter was found.
    return `${message} (no GPU driver offers WebGPU here: on Linux install a Vulkan driver, e.g. mesa-vulkan-drivers or the NVIDIA driver's Vulkan ICD, which also needs libglvnd0 and libx11-6)`;
  }
  return message;
}

export interface ProviderReport {
  readonly name: string;
  readonly available: boolean;
  readonly reason?: string;
}

/** For `adadiff doctor` and the status item: which providers could run here, from checks that load no model. */
export function providerAvailability(names: readonly string[] = defaultProviders()): ProviderReport[] {
  return names.map((name) => {
    const reason = providerUnavailableReason(name);
    return reason ? { name, available: false, reason } : { name, available: true };
  });
}

export class NoProviderError extends AdaDiffError {
  override readonly name = 'NoProviderError';
  readonly kind = 'no-provider';
  constructor(
    readonly tried: readonly ProviderAttempt[],
    /** onnxruntime's errors from providers that got as far as reading the model, in order. */
    readonly loadErrors: readonly string[],
  ) {
    super(tried.map((t) => `${t.name}: ${t.error}`).join('; '));
  }
}

export type CreateSession = (file: string, options: ort.InferenceSession.SessionOptions) => Promise<ort.InferenceSession>;

const createOrtSession: CreateSession = (file, options) => ort.InferenceSession.create(file, options);

/**
 * A session for `file` from the first provider in `providers` that can create one. Throws
 * NoProviderError with every provider's reason when none can; the caller decides whether that
 * means the file is broken (it names the file) or only the providers are. `create` is the seam
 * tests use to make a provider that passes the checks above fail at session creation; `admit`, when
 * given, runs before each provider is tried and may refuse it by throwing.
 */
export async function createSessionWithFallback(
  file: string,
  providers: readonly string[],
  options: ort.InferenceSession.SessionOptions,
  create: CreateSession = createOrtSession,
  admit?: (provider: string) => Promise<void>,
): Promise<{ session: ort.InferenceSession; choice: ProviderChoice }> {
  const tried: ProviderAttempt[] = [];
  const loadErrors: string[] = [];
  for (const name of providers) {
    const unavailable = providerUnavailableReason(name);
    if (unavailable) {
      tried.push({ name, error: unavailable });
      continue;
    }
    // A refusal (the memory check before falling back to the CPU) ends the load with its own error.
    await admit?.(name);
    try {
      const session = await create(file, { ...options, executionProviders: [name] });
      tried.push({ name });
      return { session, choice: { used: name, tried } };
    } catch (error) {
      const message = errorText(error);
      loadErrors.push(message);
      tried.push({ name, error: explainFailure(name, message) });
    }
  }
  throw new NoProviderError(tried, loadErrors);
}

/** Whether a shared library can be found where the dynamic loader looks by default. */
function findLibrary(name: string): boolean {
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`,
    `/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`,
    '/usr/lib64',
    '/lib64',
    '/usr/lib',
    '/usr/local/lib',
  ];
  return dirs.some((dir) => existsSync(path.join(dir, name)));
}
