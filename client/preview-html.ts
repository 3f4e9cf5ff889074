// The preview page's HTML, built without `vscode` so the Chromium test loads exactly what the
// panel shows. Only a skeleton: media/preview.ts fills it, always through textContent and element
// properties, never innerHTML, so a prompt is text whatever it contains.
export interface PreviewHtmlOptions {
  /** webview.cspSource: the origin the webview serves local resources from. */
  cspSource: string;
  /** A fresh random nonce per page load: the only script allowed to run carries it. */
  nonce: string;
  scriptUri: string;
  styleUri: string;
}

const escapeAttribute = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function previewHtml(o: PreviewHtmlOptions): string {
  const a = {
    cspSource: escapeAttribute(o.cspSource),
    nonce: escapeAttribute(o.nonce),
    scriptUri: escapeAttribute(o.scriptUri),
    styleUri: escapeAttribute(o.styleUri),
  };
  // Images are data URIs posted by the extension; nothing is fetched from anywhere else.
  const csp = [
    `default-src 'none'`,
    `img-src ${a.cspSource} data:`,
    `style-src ${a.cspSource}`,
    `script-src 'nonce-${a.nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${a.styleUri}">
<title>AdaDiff Preview</title>
</head>
<body>
<main>
  <header>
    <p id="prompt" class="prompt"></p>
    <p id="negative" class="negative" hidden></p>
  </header>
  <section id="status" class="status" aria-live="polite">
    <progress id="progress" max="1" value="0" hidden></progress>
    <span id="status-text"></span>
  </section>
  <section id="images" class="images">
    <figure id="main-figure" hidden>
      <img id="image" alt="Generated image">
      <figcaption id="main-caption"></figcaption>
    </figure>
    <figure id="baseline-figure" hidden>
      <img id="baseline-image" alt="Image with the baseline steps">
      <figcaption id="baseline-caption"></figcaption>
    </figure>
  </section>
  <p id="fidelity" class="fidelity" hidden></p>
  <dl id="facts" class="facts"></dl>
  <nav class="actions">
    <button id="new-seed" type="button">New seed</button>
    <button id="compare" type="button">Compare with baseline</button>
    <button id="save" type="button">Save to workspace</button>
    <button id="cancel" type="button" class="secondary">Cancel</button>
  </nav>
  <p id="saved" class="saved" hidden></p>
</main>
<script nonce="${a.nonce}" src="${a.scriptUri}"></script>
</body>
</html>
`;
}
