// Finding a graph's inputs and outputs by role from session metadata. Exporters disagree on
// names, dtypes and ranks (optimum vs diffusers' script, fp16 exports, int64 timesteps), so the
// session's own metadata decides; a graph that matches no known spelling gets a ModelError that
// lists what it does have.

import type * as ort from 'onnxruntime-node';
import { ModelError } from './errors';

export interface TensorSlot {
  readonly name: string;
  readonly type: ort.Tensor.Type;
  /** Numbers for fixed dims, strings for symbolic ones. */
  readonly shape: readonly (number | string)[];
}

export interface SlotRole {
  /** What the slot is for, in words ("the noisy latents"). */
  readonly what: string;
  /** Accepted names, the usual one first. */
  readonly names: readonly string[];
  readonly ranks: readonly number[];
  readonly types: readonly ort.Tensor.Type[];
  /** When no name matches, take the first slot with an accepted rank (outputs are often renamed). */
  readonly anyName?: boolean;
}

function slots(file: string, metadata: readonly ort.InferenceSession.ValueMetadata[]): TensorSlot[] {
  return metadata.map((m) => {
    if (!m.isTensor) throw new ModelError(file, `${m.name} is not a tensor; only tensor inputs and outputs are supported`);
    return { name: m.name, type: m.type, shape: m.shape };
  });
}

export function inputSlots(file: string, session: ort.InferenceSession): TensorSlot[] {
  return slots(file, session.inputMetadata);
}

export function outputSlots(file: string, session: ort.InferenceSession): TensorSlot[] {
  return slots(file, session.outputMetadata);
}

function describe(slot: TensorSlot): string {
  return `${slot.name} (${slot.type} [${slot.shape.join(', ')}])`;
}

/** The slot for `role`, validated; throws a ModelError naming `file` when there is none. */
export function findSlot(file: string, available: readonly TensorSlot[], role: SlotRole, kind: 'input' | 'output'): TensorSlot {
  const slot = findOptionalSlot(file, available, role, kind);
  if (!slot) {
    throw new ModelError(
      file,
      `has no ${kind} for ${role.what}: expected one named ${role.names[0]}` +
        (role.names.length > 1 ? ` (or ${role.names.slice(1).join(', ')})` : '') +
        `; found ${kind}s ${available.map(describe).join(', ') || '(none)'}`,
    );
  }
  return slot;
}

/** Like findSlot, but undefined when no slot has one of the names (a wrong rank or dtype still throws). */
export function findOptionalSlot(file: string, available: readonly TensorSlot[], role: SlotRole, kind: 'input' | 'output'): TensorSlot | undefined {
  let slot: TensorSlot | undefined;
  for (const name of role.names) {
    slot = available.find((s) => s.name === name);
    if (slot) break;
  }
  if (!slot && role.anyName) slot = available.find((s) => role.ranks.includes(s.shape.length) && role.types.includes(s.type));
  if (!slot) return undefined;
  if (!role.ranks.includes(slot.shape.length)) {
    throw new ModelError(
      file,
      `${kind} ${slot.name} for ${role.what} has rank ${slot.shape.length} [${slot.shape.join(', ')}]; expected rank ${role.ranks.join(' or ')}`,
    );
  }
  if (!role.types.includes(slot.type)) {
    throw new ModelError(file, `${kind} ${slot.name} for ${role.what} is ${slot.type}; expected ${role.types.join(' or ')}`);
  }
  return slot;
}

/** Inputs nobody will feed make every run fail; say so when the model is opened instead. */
export function rejectUnknownInputs(file: string, available: readonly TensorSlot[], known: readonly (TensorSlot | undefined)[], hint: string): void {
  const unknown = available.filter((s) => !known.some((k) => k?.name === s.name));
  if (unknown.length > 0) {
    throw new ModelError(file, `has inputs this pipeline does not feed: ${unknown.map(describe).join(', ')}; ${hint}`);
  }
}
