#!/usr/bin/env node
// Copies the ABI and bytecode of the deployable contracts from forge's `out/` into
// `artifacts/`, which is checked in: the Rust settlement crate compiles them in, so a build
// of the service needs neither forge nor a download. `--check` compares instead of writing
// and fails when the checked-in artifacts are stale.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
// TimelockController is OpenZeppelin's, unchanged: exported so the service can deploy it.
const names = [
  'SettlementToken', 'EnergySettlementVault', 'GatewayRegistry', 'RewardToken', 'RewardDistributor', 'GatewayStaking',
  'GridParameters', 'GridGovernor', 'TimelockController', 'RewardRedeemer',
];
const check = process.argv.includes('--check');
let stale = 0;
fs.mkdirSync(path.join(root, 'artifacts'), { recursive: true });
for (const name of names) {
  const built = JSON.parse(fs.readFileSync(path.join(root, 'out', `${name}.sol`, `${name}.json`), 'utf8'));
  const artifact = {
    contractName: name,
    abi: built.abi,
    bytecode: built.bytecode.object,
    deployedBytecode: built.deployedBytecode.object,
  };
  const text = JSON.stringify(artifact, null, 1) + '\n';
  const file = path.join(root, 'artifacts', `${name}.json`);
  if (check) {
    const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    if (current !== text) {
      console.error(`contracts/artifacts/${name}.json is stale: run contracts/test.sh --update-artifacts`);
      stale++;
    }
  } else {
    fs.writeFileSync(file, text);
  }
}
process.exit(stale ? 1 : 0);
