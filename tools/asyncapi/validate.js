// Validates an AsyncAPI document with the reference parser: prints each diagnostic and
// exits 1 on any error (warnings are printed, they do not fail).
// Usage: node validate.js path/to/asyncapi.json
import { readFile } from "node:fs/promises";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const path = process.argv[2];
if (!path) {
  console.error("usage: node validate.js <asyncapi.json>");
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await parser.parse(await readFile(path, "utf8"));
let errors = 0;
for (const d of diagnostics) {
  const level = d.severity === DiagnosticSeverity.Error ? "error" : "warning";
  if (level === "error") errors += 1;
  console.log(`${level} ${d.code} at ${d.path.join(".")}: ${d.message}`);
}
if (errors || !document) {
  console.log(`invalid: ${errors} error(s)`);
  process.exit(1);
}
console.log(`valid: AsyncAPI ${document.version()}, ${document.allMessages().length} messages`);
