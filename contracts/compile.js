// Compiles the contracts with the pinned solc-js into artifacts/ (ABI and creation bytecode), which are
// committed. `node compile.js --check` writes nothing and exits non-zero naming each artifact that
// differs from a fresh compile, so a source change without its artifacts cannot pass the tests.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const here = path.dirname(fileURLToPath(import.meta.url));
const sources = ["Payouts.sol", "TestToken.sol"];
const artifactsDir = path.join(here, "artifacts");

// Fixed settings: the bytecode (and the metadata hash at its end) depends on every one of them.
// Cancun is the newest fork that every chain a pool is likely to use has shipped.
const input = {
  language: "Solidity",
  sources: Object.fromEntries(
    sources.map((name) => [name, { content: fs.readFileSync(path.join(here, name), "utf8") }]),
  ),
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};

export function compile() {
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  // Warnings fail too: a contract that holds money compiles clean.
  const problems = output.errors ?? [];
  if (problems.length) throw new Error(problems.map((e) => e.formattedMessage).join("\n"));
  const artifacts = new Map();
  for (const source of sources) {
    for (const [contractName, contract] of Object.entries(output.contracts[source])) {
      if (!contract.evm.bytecode.object) continue; // an interface: nothing to deploy
      const artifact = {
        contractName,
        source,
        compiler: `solc ${solc.version()}`,
        settings: input.settings,
        abi: contract.abi,
        bytecode: `0x${contract.evm.bytecode.object}`,
      };
      artifacts.set(`${contractName}.json`, `${JSON.stringify(artifact, null, 2)}\n`);
    }
  }
  return artifacts;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes("--check");
  const artifacts = compile();
  const stale = [];
  for (const [file, text] of artifacts) {
    const target = path.join(artifactsDir, file);
    if (check) {
      if (!fs.existsSync(target) || fs.readFileSync(target, "utf8") !== text) stale.push(file);
    } else {
      fs.mkdirSync(artifactsDir, { recursive: true });
      fs.writeFileSync(target, text);
    }
  }
  if (stale.length) {
    console.error(`contracts: ${stale.join(", ")} differ from a fresh compile; run: npm --prefix contracts run compile`);
    process.exit(1);
  }
}
