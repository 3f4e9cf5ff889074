// Cooked values of string literals: what the program sees at run time, so that the prompt we
// predict steps for is the prompt the program sends. Both decoders are single linear passes.

/** JavaScript/TypeScript string and template literal bodies (escapes as in ES2022). */
export function decodeJsString(body: string): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === '\r') {
      // Template literals normalise CR and CRLF to LF; ordinary strings cannot contain them.
      out += '\n';
      if (body[i + 1] === '\n') i++;
      continue;
    }
    if (c !== '\\' || i + 1 >= body.length) {
      out += c;
      continue;
    }
    const e = body[++i];
    switch (e) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'v': out += '\v'; break;
      case '0':
        out += /[0-9]/.test(body[i + 1] ?? '') ? e : '\0';
        break;
      case 'x': {
        const hex = /^[0-9a-fA-F]{2}/.exec(body.slice(i + 1, i + 3));
        if (hex) {
          out += String.fromCharCode(parseInt(hex[0], 16));
          i += 2;
        } else out += e;
        break;
      }
      case 'u': {
        const braced = /^\{([0-9a-fA-F]{1,6})\}/.exec(body.slice(i + 1, i + 10));
        const plain = /^[0-9a-fA-F]{4}/.exec(body.slice(i + 1, i + 5));
        if (braced && parseInt(braced[1], 16) <= 0x10ffff) {
          out += String.fromCodePoint(parseInt(braced[1], 16));
          i += braced[0].length;
        } else if (plain) {
          out += String.fromCharCode(parseInt(plain[0], 16));
          i += 4;
        } else out += e;
        break;
      }
      case '\r':
        if (body[i + 1] === '\n') i++;
        break; // line continuation
      case '\n':
      case '\u2028':
      case '\u2029':
        break; // line continuation
      default:
        out += e; // \' \" \\ \` \$ and identity escapes
    }
  }
  return out;
}

const PY_SIMPLE: Record<string, string> = {
  '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v',
};

/**
 * Python str literal bodies. `raw` keeps backslashes (r-strings); `fstring` turns `{{`/`}}` into
 * braces (f-strings with interpolations never reach here). Unknown escapes stay as written, as in
 * Python; \N{NAME} stays as written too, since we carry no Unicode name table.
 */
export function decodePythonString(body: string, raw: boolean, fstring: boolean): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === '\r') {
      out += '\n'; // universal newlines, as Python reads source
      if (body[i + 1] === '\n') i++;
      continue;
    }
    if (fstring && (c === '{' || c === '}') && body[i + 1] === c) {
      out += c;
      i++;
      continue;
    }
    if (c !== '\\' || i + 1 >= body.length) {
      out += c;
      continue;
    }
    const e = body[i + 1];
    if (raw) {
      // A raw string keeps the backslash, but an escaped quote still does not end it.
      out += c + e;
      i++;
      continue;
    }
    i++;
    if (e in PY_SIMPLE) {
      out += PY_SIMPLE[e];
    } else if (e === '\n') {
      // line continuation
    } else if (e === '\r') {
      if (body[i + 1] === '\n') i++;
    } else if (/[0-7]/.test(e)) {
      const oct = /^[0-7]{1,3}/.exec(body.slice(i, i + 3))![0];
      out += String.fromCharCode(parseInt(oct, 8));
      i += oct.length - 1;
    } else if (e === 'x' || e === 'u' || e === 'U') {
      const len = e === 'x' ? 2 : e === 'u' ? 4 : 8;
      const hex = body.slice(i + 1, i + 1 + len);
      const cp = hex.length === len && /^[0-9a-fA-F]+$/.test(hex) ? parseInt(hex, 16) : -1;
      if (cp >= 0 && cp <= 0x10ffff) {
        out += String.fromCodePoint(cp);
        i += len;
      } else out += '\\' + e;
    } else {
      out += '\\' + e;
    }
  }
  return out;
}

/** JSX attribute strings take no backslash escapes, only HTML character references. */
export function decodeJsxString(body: string): string {
  return body.replace(/&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|amp|lt|gt|quot|apos|nbsp);/g, (all, ref: string) => {
    if (ref[0] === '#') {
      const cp = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : all;
    }
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' } as Record<string, string>)[ref];
  });
}
