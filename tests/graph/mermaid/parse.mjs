// Parse each Mermaid diagram given as a file argument with mermaid's own parser; print one JSON line per file.
// Why jsdom: mermaid.parse sanitises labels with DOMPurify, which needs a DOM even when nothing is drawn.
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });

for (const file of process.argv.slice(2)) {
  try {
    const result = await mermaid.parse(readFileSync(file, 'utf8'));
    console.log(JSON.stringify({ file, ok: true, type: result.diagramType }));
  } catch (error) {
    console.log(JSON.stringify({ file, ok: false, error: String(error?.message ?? error) }));
    process.exitCode = 1;
  }
}
