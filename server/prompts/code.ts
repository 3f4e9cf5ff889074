// Prompts in Python, JavaScript and TypeScript (JSX/TSX too), found with tree-sitter.
//
// A string literal is a prompt when it is
//  1. the value of a keyword argument, object/dict property, JSX attribute, parameter default,
//     class field, or variable/assignment whose name contains one of `settings.names`
//     (case-insensitive; default "prompt") — unless the name says negative (a word `negative` or
//     `neg`: negative_prompt, negativePrompt, neg_prompt), in which case it is attached to the
//     nearest positive prompt in the same call, object, parameter list or scope instead;
//  2. the first argument of a call to one of `settings.callees` (a name, or a dotted tail such as
//     `images.generate`, which matches `client.images.generate(...)`);
//  3. the next string literal after a comment containing `adadiff: prompt`, which may carry
//     options in the options syntax: `# adadiff: prompt seed: 7, steps: 20`.
// A list/array of literals under rule 1 or 2 gives one prompt per element. A literal is a plain
// string, an implicit ("a" "b") or `+` concatenation of literals, or a template literal without
// substitutions; f-strings with interpolations, template literals with substitutions and bytes
// are not prompts, since their text is only known at run time.
// Sibling keyword arguments / properties in the same call or object give options: seed,
// steps | num_inference_steps | num_steps (integer or "auto"), size ("WxH"), width + height, out.
// For a callee's first argument, an object among the other arguments is that same object
// (`pipe("a cat", { num_inference_steps: 20 })`).
import type { Node as SyntaxNode } from '@vscode/tree-sitter-wasm';
import { decodeJsString, decodeJsxString, decodePythonString } from './literals';
import { mergeOptions, parseInteger, parseOptions, parseSize } from './options';
import { LineIndex } from './positions';
import { loadGrammar, type Grammar, type LoadedGrammar, type QuerySources } from './treeSitter';
import type { PromptOptions, PromptScan, PromptSpan, ScanOptions } from './types';

const PYTHON_QUERIES: QuerySources = {
  sites: [
    '(keyword_argument name: (identifier) @name value: (_) @value) @kwarg',
    '(pair key: (_) @name value: (_) @value) @pair',
    '(assignment left: (_) @name right: (_) @value) @assign',
    '(default_parameter name: (identifier) @name value: (_) @value) @param',
    '(typed_default_parameter name: (identifier) @name value: (_) @value) @param',
    '(call function: (_) @callee arguments: (argument_list) @args) @call',
    '(comment) @comment',
  ],
  literals: ['[(string) (concatenated_string) (binary_operator) (parenthesized_expression)] @literal'],
};

const JS_QUERIES: QuerySources = {
  sites: [
    '(pair key: (_) @name value: (_) @value) @pair',
    '(jsx_attribute (property_identifier) @name (_) @value) @jsx',
    '(variable_declarator name: (_) @name value: (_) @value) @assign',
    '(assignment_expression left: (_) @name right: (_) @value) @assign',
    '(assignment_pattern left: (_) @name right: (_) @value) @param',
    '(object_assignment_pattern left: (_) @name right: (_) @value) @param',
    '(required_parameter pattern: (_) @name value: (_) @value) @param',
    '(optional_parameter pattern: (_) @name value: (_) @value) @param',
    '(public_field_definition name: (_) @name value: (_) @value) @param',
    '(field_definition property: (_) @name value: (_) @value) @param',
    '(call_expression function: (_) @callee arguments: (arguments) @args) @call',
    '(new_expression constructor: (_) @callee arguments: (arguments) @args) @call',
    '(comment) @comment',
  ],
  literals: ['[(string) (template_string) (binary_expression) (parenthesized_expression)] @literal'],
};

/** Nodes that delimit the "same scope" for variables and assignments. */
const SCOPES = new Set(['module', 'block', 'program', 'statement_block', 'class_body']);
/** Wrappers that do not change a literal's value. */
const TRANSPARENT = new Set([
  'parenthesized_expression',
  'as_expression',
  'satisfies_expression',
  'non_null_expression',
  'jsx_expression',
]);
const SEQUENCES = new Set(['list', 'tuple', 'array', 'expression_list']);
/** Capture names that are parts of a site; the remaining capture names the site's kind. */
const ROLES = new Set(['name', 'value', 'callee', 'args']);
const MARKER = /adadiff:\s*prompt\b/i;
const STEP_NAMES = new Set(['steps', 'num_inference_steps', 'num_steps', 'inference_steps', 'numinferencesteps', 'numsteps']);
/**
 * Time allowed for one document: normal code takes about 0.3 ms per KB, but tree-sitter's query
 * cursor is quadratic in nesting depth (a hostile file of 100k open brackets), so each phase
 * stops at this deadline and what was found so far is returned.
 */
const budgetMs = (length: number) => 2_000 + length / 1_000;
/**
 * Nodes report offsets in UTF-16 code units, but query ranges go to tree-sitter unconverted, as
 * byte offsets into the UTF-16 text it parsed (web-tree-sitter 0.25). The marker tests catch a change.
 */
const UTF16_BYTES = 2;
/** How far up an assignment's scope is looked for (each step costs O(depth) in tree-sitter). */
const MAX_SCOPE_WALK = 8;

export interface CodeSettings {
  names: string[];
  callees: string[];
}

interface Literal {
  text: string;
  start: number;
  end: number;
}

interface Candidate extends Literal {
  container?: number;
  marker?: PromptOptions;
}

interface Negative extends Literal {
  container: number;
}

/** Option values found beside prompts, per call/object; width, height and offsets become options at the end. */
interface SiblingOptions extends Omit<PromptOptions, 'stepsRange'> {
  width?: number;
  height?: number;
  stepsLiteral?: { start: number; end: number };
}

export async function findCodePrompts(
  text: string,
  grammar: Grammar,
  settings: CodeSettings,
  { token, budgetMs: budget }: ScanOptions = {},
): Promise<PromptScan> {
  const none = { spans: [], cutOff: false };
  const family = grammar === 'python' ? PYTHON_QUERIES : JS_QUERIES;
  const loaded = await loadGrammar(grammar, family);
  if (token?.isCancellationRequested) return none;

  const deadline = Date.now() + (budget ?? budgetMs(text.length));
  // Called by tree-sitter every few hundred operations: read the clock on every 64th call only.
  let calls = 0;
  let over = false;
  const overdue = () => (over ||= (++calls & 63) === 0 && Date.now() > deadline);
  loaded.parser.reset();
  // tree-sitter's lexers take U+0000 for the end of the input: a NUL inside a literal lost that
  // prompt and every one after it. The parser reads a space there instead (offsets are unchanged);
  // literals are still sliced from the original text. Stopped by the deadline, it returns no tree.
  const tree = loaded.parser.parse(text.includes('\0') ? text.replaceAll('\0', ' ') : text, null, { progressCallback: overdue });
  if (!tree) return { spans: [], cutOff: over };
  try {
    await nextTurn();
    if (token?.isCancellationRequested) return none;
    const finder = new CodeFinder(text, grammar, loaded, settings, overdue);
    finder.collect(tree.rootNode);
    await nextTurn();
    if (token?.isCancellationRequested) return none;
    return { spans: finder.spans(), cutOff: over };
  } finally {
    tree.delete();
  }
}

/** Lets a cancellation request (or any other message) in between two phases of work. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

class CodeFinder {
  private readonly names: string[];
  private readonly callees: string[][];
  private readonly candidates = new Map<number, Candidate>();
  private readonly negatives: Negative[] = [];
  private readonly siblings = new Map<number, SiblingOptions>();
  private readonly markers: { end: number; options?: PromptOptions }[] = [];

  constructor(
    private readonly text: string,
    private readonly grammar: Grammar,
    private readonly loaded: LoadedGrammar,
    settings: CodeSettings,
    private readonly overdue: () => boolean,
  ) {
    this.names = settings.names.map((n) => n.toLowerCase()).filter(Boolean);
    this.callees = settings.callees.map((c) => c.split('.').filter(Boolean)).filter((c) => c.length > 0);
  }

  collect(root: SyntaxNode): void {
    for (const match of this.loaded.sites.matches(root, { progressCallback: this.overdue })) {
      if (this.overdue()) break;
      const nodes: Record<string, SyntaxNode> = {};
      let site = '';
      for (const capture of match.captures) {
        nodes[capture.name] = capture.node;
        if (!ROLES.has(capture.name)) site = capture.name;
      }
      if (site === 'comment') this.comment(nodes.comment);
      else if (site === 'call') this.call(nodes.callee, nodes.args);
      else if (nodes.name && nodes.value) this.namedValue(site, nodes[site], nodes.name, nodes.value);
    }
    this.resolveMarkers(root);
  }

  spans(): PromptSpan[] {
    const lines = new LineIndex(this.text);
    const negatives = groupByContainer(this.negatives.filter((n) => !this.candidates.has(n.start)));
    return [...this.candidates.values()]
      .sort((a, b) => a.start - b.start)
      .map((c) => {
        const sibling = c.container === undefined ? undefined : this.siblings.get(c.container);
        const options = mergeOptions(siblingOptions(sibling, lines), c.marker);
        const attached = c.container === undefined ? undefined : nearest(negatives.get(c.container), c.start);
        const negative = attached?.text ?? options.negative;
        const span: PromptSpan = { text: c.text, range: lines.range(c.start, c.end), kind: 'code-string', options };
        if (negative !== undefined) span.negative = negative;
        if (options.out !== undefined) span.target = options.out;
        return span;
      });
  }

  private namedValue(site: string, siteNode: SyntaxNode, nameNode: SyntaxNode, value: SyntaxNode): void {
    const name = this.nameOf(nameNode);
    if (name === undefined) return;
    const lower = name.toLowerCase();
    const container = this.containerOf(site, siteNode);
    if (container === undefined) return;
    if (site === 'kwarg' || site === 'pair' || site === 'jsx') this.siblingOption(container, lower, value);
    const negative = isNegativeName(name);
    if (!this.names.some((n) => lower.includes(n)) && !(negative && /^neg(ative)?$/i.test(name))) return;
    // A JSX attribute string (prompt="...") takes HTML references, not backslash escapes.
    const jsx = site === 'jsx' && value.type === 'string';
    if (negative) {
      const literal = this.literal(value, jsx);
      if (literal) this.negatives.push({ ...literal, container });
      return;
    }
    for (const literal of this.literals(value, jsx)) this.addCandidate(literal, container);
  }

  private call(callee: SyntaxNode, args: SyntaxNode): void {
    const path = calleePath(callee);
    if (!this.callees.some((c) => c.length <= path.length && c.every((part, i) => part === path[path.length - c.length + i]))) {
      return;
    }
    const first = firstNonComment(args);
    if (!first || first.type === 'keyword_argument') return;
    // `pipe("a cat", { steps: 20 })`: JavaScript has no keyword arguments, so an object beside the
    // prompt is where its options and negative are written; it stands for the call's container.
    const options = namedChildren(args).find((c) => c.type === 'object' && c.id !== first.id);
    for (const literal of this.literals(first)) this.addCandidate(literal, options?.id ?? args.id);
  }

  private comment(node: SyntaxNode): void {
    const body = this.text.slice(node.startIndex, node.endIndex);
    const m = MARKER.exec(body);
    if (!m) return;
    const tail = body.slice(m.index + m[0].length).replace(/\*\/\s*$/, '');
    this.markers.push({ end: node.endIndex, options: parseOptions(tail) });
  }

  /**
   * Each marker takes the first literal expression that starts after it: the outermost one at
   * that place, so `"a" + "b"` or `("a" "b")` is taken whole. Searched in growing windows, so a
   * marker costs what lies between it and its literal, not the whole document.
   */
  private resolveMarkers(root: SyntaxNode): void {
    for (const marker of this.markers) {
      if (this.overdue()) return;
      let literal: Literal | undefined;
      for (let window = 512; !literal; window *= 8) {
        const endIndex = Math.min(this.text.length, marker.end + window);
        const range = { startIndex: marker.end * UTF16_BYTES, endIndex: endIndex * UTF16_BYTES };
        const nodes = this.loaded.literals
          .captures(root, { ...range, progressCallback: this.overdue })
          .map((c) => c.node)
          .filter((n) => n.startIndex >= marker.end)
          .sort((a, b) => a.startIndex - b.startIndex || b.endIndex - a.endIndex);
        for (const node of nodes) {
          literal = this.literal(node);
          if (literal) break;
        }
        if (endIndex >= this.text.length || this.overdue()) break;
      }
      if (!literal?.text.trim()) continue;
      const existing = this.candidates.get(literal.start);
      if (existing) existing.marker = marker.options;
      else this.candidates.set(literal.start, { ...literal, marker: marker.options });
    }
  }

  private addCandidate(literal: Literal, container: number): void {
    if (literal.text.trim() && !this.candidates.has(literal.start)) this.candidates.set(literal.start, { ...literal, container });
  }

  private siblingOption(container: number, name: string, value: SyntaxNode): void {
    const options = this.siblings.get(container) ?? {};
    const scalar = this.scalar(value);
    if (scalar === undefined) return;
    const int = typeof scalar === 'number' ? scalar : undefined;
    if (name === 'seed' && int !== undefined) options.seed = int;
    else if (STEP_NAMES.has(name)) {
      if (int !== undefined && int >= 1) {
        const literal = unwrap(value);
        options.steps = int;
        options.stepsLiteral = { start: literal.startIndex, end: literal.endIndex };
      } else if (scalar === 'auto') {
        options.steps = 'auto';
        delete options.stepsLiteral;
      }
    } else if (name === 'size' && typeof scalar === 'string') options.size = parseSize(scalar) ?? options.size;
    else if (name === 'width' && int !== undefined) options.width = int;
    else if (name === 'height' && int !== undefined) options.height = int;
    else if (name === 'out' && typeof scalar === 'string' && scalar) options.out = scalar;
    else return;
    this.siblings.set(container, options);
  }

  /** An integer or a string literal's value. */
  private scalar(node: SyntaxNode): number | string | undefined {
    const inner = unwrap(node);
    if (inner.type === 'integer' || inner.type === 'number') {
      return parseInteger(this.text.slice(inner.startIndex, inner.endIndex).replace(/_/g, ''));
    }
    return this.literal(inner)?.text;
  }

  private containerOf(site: string, node: SyntaxNode): number | undefined {
    if (site !== 'assign') return node.parent?.id;
    let n = node.parent;
    for (let i = 0; n && i < MAX_SCOPE_WALK; i++, n = n.parent) if (SCOPES.has(n.type)) return n.id;
    return node.parent?.id; // unusually deep: the enclosing statement stands in for the scope
  }

  private nameOf(node: SyntaxNode): string | undefined {
    switch (node.type) {
      case 'identifier':
      case 'property_identifier':
      case 'shorthand_property_identifier_pattern':
      case 'private_property_identifier':
        return this.text.slice(node.startIndex, node.endIndex);
      case 'attribute': {
        const attr = node.childForFieldName('attribute');
        return attr ? this.nameOf(attr) : undefined;
      }
      case 'member_expression': {
        const prop = node.childForFieldName('property');
        return prop ? this.nameOf(prop) : undefined;
      }
      case 'subscript':
      case 'subscript_expression': {
        const index = node.childForFieldName(node.type === 'subscript' ? 'subscript' : 'index');
        return index ? this.literal(index)?.text : undefined;
      }
      case 'string':
        return this.literal(node)?.text;
      default:
        return undefined;
    }
  }

  /** One literal, or each literal element of a list/tuple/array. */
  private literals(node: SyntaxNode, jsx = false): Literal[] {
    const inner = unwrap(node);
    if (!SEQUENCES.has(inner.type)) {
      const one = this.literal(inner, jsx);
      return one ? [one] : [];
    }
    const out: Literal[] = [];
    for (const child of namedChildren(inner)) {
      const literal = this.literal(child);
      if (literal) out.push(literal);
    }
    return out;
  }

  /** The value of a literal expression, or undefined when any part is not a plain literal. */
  private literal(node: SyntaxNode, jsx = false): Literal | undefined {
    const root = unwrap(node);
    // Concatenations nest to the left ("a" + "b" + "c"), so walk them with a stack, not recursion.
    const stack: SyntaxNode[] = [root];
    let text = '';
    while (stack.length) {
      const n = unwrap(stack.pop()!);
      if (n.hasError) return undefined;
      if (n.type === 'concatenated_string' || isPlus(n)) {
        const parts: SyntaxNode[] = [];
        for (const c of namedChildren(n)) if (c.type !== 'comment') parts.push(c);
        for (let i = parts.length - 1; i >= 0; i--) stack.push(parts[i]);
        continue;
      }
      const part = this.stringValue(n, jsx);
      if (part === undefined) return undefined;
      text += part;
    }
    return { text, start: root.startIndex, end: root.endIndex };
  }

  private stringValue(node: SyntaxNode, jsx: boolean): string | undefined {
    const raw = this.text.slice(node.startIndex, node.endIndex);
    if (node.type === 'template_string') {
      if (namedChildren(node).some((c) => c.type === 'template_substitution')) return undefined;
      return raw.length >= 2 && raw.endsWith('`') ? decodeJsString(raw.slice(1, -1)) : undefined;
    }
    if (node.type !== 'string') return undefined;
    if (this.grammar !== 'python') {
      if (raw.length < 2 || raw[raw.length - 1] !== raw[0]) return undefined;
      const body = raw.slice(1, -1);
      return jsx ? decodeJsxString(body) : decodeJsString(body);
    }
    const m = /^([A-Za-z]*)('''|"""|'|")/.exec(raw);
    if (!m || raw.length < m[0].length + m[2].length || !raw.endsWith(m[2])) return undefined;
    const prefix = m[1].toLowerCase();
    if (prefix.includes('b')) return undefined;
    const fstring = prefix.includes('f') || prefix.includes('t');
    if (fstring) {
      if (namedChildren(node).some((c) => c.type === 'interpolation')) return undefined;
    }
    return decodePythonString(raw.slice(m[0].length, raw.length - m[2].length), prefix.includes('r'), fstring);
  }
}

// Children are listed from the parent (namedChildren, namedChild(i)), never walked with
// nextSibling or parent: tree-sitter finds a sibling or parent by descending from the root, which
// costs O(depth) a step and turns deep (hostile) trees quadratic.
function namedChildren(node: SyntaxNode): SyntaxNode[] {
  return node.namedChildren.filter((c): c is SyntaxNode => c !== null);
}

function firstNonComment(node: SyntaxNode): SyntaxNode | undefined {
  for (let i = 0; i < node.namedChildCount; i++) {
    const child = node.namedChild(i);
    if (child && child.type !== 'comment') return child;
  }
  return undefined;
}

function unwrap(node: SyntaxNode): SyntaxNode {
  let n = node;
  while (TRANSPARENT.has(n.type)) {
    const inner = n.namedChild(0);
    if (!inner) break;
    n = inner;
  }
  return n;
}

function isPlus(node: SyntaxNode): boolean {
  return (
    (node.type === 'binary_expression' || node.type === 'binary_operator') &&
    node.childForFieldName('operator')?.type === '+'
  );
}

/** `client.images.generate` -> ['client', 'images', 'generate']; stops at anything but names. */
function calleePath(node: SyntaxNode): string[] {
  const path: string[] = [];
  let n: SyntaxNode | null = node;
  while (n) {
    if (n.type === 'identifier') {
      path.unshift(n.text);
      break;
    }
    const field = n.type === 'attribute' ? 'attribute' : n.type === 'member_expression' ? 'property' : undefined;
    const name = field ? n.childForFieldName(field) : null;
    if (!name) break;
    path.unshift(name.text);
    n = n.childForFieldName('object');
  }
  return path;
}

/** negative_prompt, negativePrompt, NEG_PROMPT, negPrompt: a word `negative` or `neg`. */
function isNegativeName(name: string): boolean {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .some((word) => word === 'negative' || word === 'neg');
}

function groupByContainer(negatives: Negative[]): Map<number, Negative[]> {
  const groups = new Map<number, Negative[]>();
  for (const n of negatives) {
    const group = groups.get(n.container);
    if (group) group.push(n);
    else groups.set(n.container, [n]);
  }
  for (const group of groups.values()) group.sort((a, b) => a.start - b.start);
  return groups;
}

/** The negative closest to a prompt (by offset) in its container; binary search, sorted input. */
function nearest(group: Negative[] | undefined, offset: number): Negative | undefined {
  if (!group?.length) return undefined;
  let lo = 0;
  let hi = group.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (group[mid].start < offset) lo = mid + 1;
    else hi = mid;
  }
  const after = group[lo];
  const before = group[lo - 1];
  if (!before) return after;
  if (!after) return before;
  return after.start - offset <= offset - before.end ? after : before;
}

function siblingOptions(sibling: SiblingOptions | undefined, lines: LineIndex): PromptOptions | undefined {
  if (!sibling) return undefined;
  const { width, height, stepsLiteral, ...rest } = sibling;
  const options: PromptOptions = rest;
  if (!options.size && width !== undefined && height !== undefined) options.size = { width, height };
  if (stepsLiteral) options.stepsRange = lines.range(stepsLiteral.start, stepsLiteral.end);
  return options;
}
