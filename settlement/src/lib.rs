//! Settlement: from trades and meter readings to balances on an EVM chain.
//!
//! Data flow: the matching engine's trades and the stored meter readings of a delivery interval
//! become per-participant [`ledger::Position`]s (traded vs metered energy, imbalance priced at the
//! utility tariff); [`ledger::BatchBuilder`] nets every posting into one delta per account
//! (summing to exactly zero); [`merkle::MerkleTree`] commits to the batch's trades; [`chain`]
//! posts the batch to the `EnergySettlementVault` contract (see `contracts/`) through one of two
//! backends behind the [`chain::Chain`] trait: a JSON-RPC node (alloy; anvil in CI) or the
//! in-process EVM (revm), which runs the same bytecode.
//!
//! [`queue`] makes each batch's submission crash-safe; [`step`] is what the market service runs
//! on a timer: due intervals → stored batches → the queue. [`custody`] signs for the custodial
//! accounts the service holds (a permit the service sends, paying the gas).
//!
//! We use alloy rather than ethers-rs: ethers-rs is archived and its authors point to alloy.

pub mod chain;
pub mod contracts;
pub mod custody;
pub mod governance;
pub mod ledger;
pub mod merkle;
pub mod once;
pub mod onchain;
pub mod queue;
pub mod rewards;
pub mod slashing;
pub mod step;
