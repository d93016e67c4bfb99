// Compiles quid's contracts (QuidToken.sol, QuidBatchSettler.sol) with the solc pinned in
// package.json (the bundled wasm build, so nothing is downloaded) and writes the artifacts that
// build.sh feeds to abigen. Settings are explicit: the EVM target is cancun, not solc's moving
// default, so the bytecode runs on every chain quid targets (Base, and the devnet) and stays the
// same from one machine to the next. Each contract is compiled on its own, so adding one never
// changes another's bytecode. Warnings fail the build, so the committed artifacts always come
// from a clean compile.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const SOLC_VERSION = "0.8.37";
const CONTRACTS = ["QuidToken", "QuidBatchSettler"];

const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, "artifacts");

if (!solc.version().startsWith(`${SOLC_VERSION}+`)) {
  throw new Error(`solc ${solc.version()} is installed, want ${SOLC_VERSION}: run npm ci`);
}

for (const name of CONTRACTS) {
  compile(name);
}

function compile(CONTRACT) {
  const SOURCE = `${CONTRACT}.sol`;
  const source = readFileSync(join(here, SOURCE), "utf8");
  const settings = {
    evmVersion: "cancun",
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { [SOURCE]: { [CONTRACT]: ["abi", "evm.bytecode.object"] } },
  };
  const input = { language: "Solidity", sources: { [SOURCE]: { content: source } }, settings };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));

  const diagnostics = output.errors ?? [];
  for (const d of diagnostics) {
    process.stderr.write(d.formattedMessage ?? d.message);
  }
  if (diagnostics.length > 0) {
    throw new Error(`solc reported ${diagnostics.length} diagnostic(s); fix them before committing artifacts`);
  }

  const contract = output.contracts[SOURCE][CONTRACT];

  // abigen names overloads in ABI order: the first keeps the plain Go name, later ones get 0, 1, ….
  // List the USDC originals, which take (v, r, s), before their packed-signature twins, so that
  // PackTransferWithAuthorization is the 0xe3ee160e function. Otherwise keep solc's order.
  const abi = contract.abi
    .map((entry, i) => ({ entry, i }))
    .sort((a, b) => {
      if (a.entry.type === "function" && b.entry.type === "function" && a.entry.name === b.entry.name) {
        return b.entry.inputs.length - a.entry.inputs.length;
      }
      return a.i - b.i;
    })
    .map(({ entry }) => entry);
  const bytecode = contract.evm.bytecode.object;
  if (!/^[0-9a-f]+$/.test(bytecode)) {
    throw new Error("solc returned no bytecode");
  }

  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, `${CONTRACT}.abi.json`), JSON.stringify(abi, null, 2) + "\n");
  writeFileSync(join(outDir, `${CONTRACT}.bin`), bytecode + "\n");
  // The build record lets a Go test notice a source edited without a rebuild, with no npm needed.
  const build = {
    compiler: `solc ${solc.version()}`,
    settings: { evmVersion: settings.evmVersion, optimizer: settings.optimizer },
    source: SOURCE,
    sourceSha256: createHash("sha256").update(source).digest("hex"),
  };
  writeFileSync(join(outDir, `${CONTRACT}.build.json`), JSON.stringify(build, null, 2) + "\n");
}
