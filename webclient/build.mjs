// Bundles src/ into dist/: one hashed script, one hashed stylesheet, index.html.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";

const out = new URL("./dist/", import.meta.url).pathname;
rmSync(out, { recursive: true, force: true });
mkdirSync(`${out}assets`, { recursive: true });

const result = await build({
  entryPoints: ["src/main.tsx"],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome110", "firefox110", "safari16"],
  jsx: "automatic",
  jsxImportSource: "preact",
  write: false,
  metafile: true,
  outdir: out,
  legalComments: "none",
  // Russian text as UTF-8, not \u escapes: about half the bytes of every phrase.
  charset: "utf8",
});

const hashed = (name, text) => {
  const hash = createHash("sha256").update(text).digest("hex").slice(0, 12);
  const [base, ext] = name.split(".");
  return `assets/${base}-${hash}.${ext}`;
};
let script = "";
let style = "";
for (const file of result.outputFiles) {
  if (file.path.endsWith(".js")) script = file.text;
  if (file.path.endsWith(".css")) style = file.text;
}
style += readFileSync("src/styles.css", "utf8");
const scriptPath = hashed("app.js", script);
const stylePath = hashed("app.css", style);
writeFileSync(out + scriptPath, script);
writeFileSync(out + stylePath, style);
writeFileSync(
  `${out}index.html`,
  `<!doctype html>
<html lang="ru">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="color-scheme" content="light dark">
<title>Parta</title>
<link rel="stylesheet" href="/${stylePath}">
<script type="module" src="/${scriptPath}"></script>
</head>
<body><div id="app"></div></body>
</html>
`,
);
const kib = (text) => `${(Buffer.byteLength(text) / 1024).toFixed(1)} KiB`;
console.log(`webclient: ${scriptPath} ${kib(script)}, ${stylePath} ${kib(style)}`);
