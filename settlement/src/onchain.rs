//! Deploying the contracts and sending settlement transactions to a [`Chain`].
//!
//! Every transaction is built and signed here with an explicit nonce ([`Wallet`]); the chain only
//! ever sees raw signed bytes. [`Submitter::submit`] broadcasts, waits for the receipt, and when a
//! transaction is not mined within `bump_after` re-signs the *same nonce* with fees raised by
//! 12.5 % (the minimum replacement bump nodes accept), so at most one of the versions can ever be
//! mined. A reverted transaction comes back as [`SubmitError::Reverted`] with the contract's
//! decoded error.

use std::collections::HashMap;
use std::time::Duration;

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Encodable2718;
use alloy::network::TxSignerSync;
use alloy::primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolConstructor, SolInterface, SolValue};

use crate::chain::{Chain, ChainError, Fees, Receipt};
use crate::contracts::{EnergySettlementVault, SettlementToken};

/// Errors of sending a transaction.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The chain refused or failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The transaction was mined but reverted.
    #[error("transaction {tx_hash} reverted in block {block}: {reason}")]
    Reverted {
        /// Its hash.
        tx_hash: B256,
        /// The block.
        block: u64,
        /// The decoded contract error, or the raw revert data.
        reason: String,
    },
    /// A call's revert, decoded.
    #[error("call reverted: {0}")]
    CallReverted(String),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(#[source] alloy::signers::Error),
    /// Not mined within the deadline, even after fee bumps.
    #[error("transaction with nonce {nonce} not mined after {waited:?} ({bumps} fee bumps)")]
    NotMined {
        /// The nonce.
        nonce: u64,
        /// How long it waited.
        waited: Duration,
        /// Fee bumps sent.
        bumps: u32,
    },
    /// The chain returned data the contract ABI does not describe.
    #[error("cannot decode {what}: {source}")]
    Decode {
        /// What was decoded.
        what: &'static str,
        /// The decoder's error.
        #[source]
        source: alloy::sol_types::Error,
    },
    /// A contract creation was mined without creating a contract.
    #[error("cannot decode deployment receipt: transaction {tx_hash} has no contract address")]
    NoContractAddress {
        /// The creating transaction.
        tx_hash: B256,
    },
    /// The vault is at a chunk the batch does not have (the batch was split differently when it
    /// was started).
    #[error("cannot decode vault cursor: vault expects chunk {expected} of batch {batch_id}, which has {chunks}")]
    UnexpectedChunk {
        /// The batch.
        batch_id: u64,
        /// The chunk the vault expects next.
        expected: u32,
        /// The chunks of the batch here.
        chunks: usize,
    },
}

/// Decodes a revert of any GridShare contract into its Solidity error name and fields.
pub fn decode_revert(data: &[u8]) -> String {
    if let Ok(e) = EnergySettlementVault::EnergySettlementVaultErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(e) = SettlementToken::SettlementTokenErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(e) = crate::contracts::RewardDistributor::RewardDistributorErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(e) = crate::contracts::RewardToken::RewardTokenErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(e) = crate::contracts::GatewayStaking::GatewayStakingErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(e) = crate::contracts::GatewayRegistry::GatewayRegistryErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(e) = crate::contracts::GridParameters::GridParametersErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(e) = crate::contracts::GridGovernor::GridGovernorErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(e) = crate::contracts::TimelockController::TimelockControllerErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(e) = crate::contracts::RewardRedeemer::RewardRedeemerErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if data.is_empty() {
        return "no revert data (out of gas or a failed check without a reason)".to_owned();
    }
    format!("0x{}", alloy::hex::encode(data))
}

/// A signing key and the chain id it signs for.
#[derive(Debug, Clone)]
pub struct Wallet {
    key: PrivateKeySigner,
    chain_id: u64,
}

/// One signed transaction, ready to broadcast (and to store before broadcasting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTx {
    /// Its hash.
    pub hash: B256,
    /// The EIP-2718 encoding.
    pub raw: Bytes,
    /// Its nonce.
    pub nonce: u64,
    /// The fees it offers.
    pub fees: Fees,
}

impl Wallet {
    /// A wallet for `key` on chain `chain_id`.
    pub fn new(key: PrivateKeySigner, chain_id: u64) -> Self {
        Self { key, chain_id }
    }

    /// The sending address.
    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// Signs a call (`to = Some`) or a contract creation (`to = None`).
    pub fn sign(
        &self,
        nonce: u64,
        to: Option<Address>,
        input: Bytes,
        gas_limit: u64,
        fees: Fees,
    ) -> Result<SignedTx, SubmitError> {
        let mut tx = TxEip1559 {
            chain_id: self.chain_id,
            nonce,
            gas_limit,
            max_fee_per_gas: fees.max_fee_per_gas,
            max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
            to: to.map_or(TxKind::Create, TxKind::Call),
            value: U256::ZERO,
            access_list: Default::default(),
            input,
        };
        let sig = self.key.sign_transaction_sync(&mut tx).map_err(SubmitError::Sign)?;
        let envelope = TxEnvelope::Eip1559(tx.into_signed(sig));
        Ok(SignedTx {
            hash: *envelope.tx_hash(),
            raw: Bytes::from(envelope.encoded_2718()),
            nonce,
            fees,
        })
    }
}

/// Sends transactions from one wallet, tracking its nonce.
#[derive(Debug)]
pub struct Submitter<'c, C> {
    chain: &'c C,
    wallet: Wallet,
    next_nonce: u64,
    /// Poll interval for receipts.
    pub poll: Duration,
    /// Re-sign with higher fees when not mined for this long.
    pub bump_after: Duration,
    /// Give up after this long.
    pub deadline: Duration,
}

impl<'c, C: Chain> Submitter<'c, C> {
    /// A submitter starting at the wallet's next nonce on chain.
    pub async fn new(chain: &'c C, wallet: Wallet) -> Result<Self, SubmitError> {
        let next_nonce = chain.nonce(wallet.address()).await?;
        Ok(Self {
            chain,
            wallet,
            next_nonce,
            poll: Duration::from_millis(20),
            bump_after: Duration::from_secs(12),
            deadline: Duration::from_secs(120),
        })
    }

    /// The sending address.
    pub fn address(&self) -> Address {
        self.wallet.address()
    }

    /// The chain.
    pub fn chain(&self) -> &'c C {
        self.chain
    }

    /// Sends a transaction and waits until it is mined; a revert is an error.
    pub async fn submit(&mut self, to: Option<Address>, input: Bytes) -> Result<Receipt, SubmitError> {
        let gas = match self.chain.estimate_gas(self.address(), to, input.clone()).await {
            Ok(g) => g,
            Err(ChainError::CallReverted(data)) => return Err(SubmitError::CallReverted(decode_revert(&data))),
            Err(e) => return Err(e.into()),
        };
        // 20 % headroom, within the EIP-7825 cap
        let gas_limit = (gas + gas / 5).min(1 << 24);
        let mut fees = self.chain.fees().await?;
        let nonce = self.next_nonce;
        let mut tx = self.wallet.sign(nonce, to, input.clone(), gas_limit, fees)?;
        let mut sent = vec![tx.hash];
        self.chain.send_raw(tx.raw.clone()).await?;
        self.next_nonce += 1;
        let start = tokio::time::Instant::now();
        let mut last_send = start;
        let mut bumps = 0;
        loop {
            for h in &sent {
                if let Some(r) = self.chain.receipt(*h).await? {
                    if !r.success {
                        return Err(SubmitError::Reverted {
                            tx_hash: r.tx_hash,
                            block: r.block_number,
                            reason: self.revert_reason(to, input).await,
                        });
                    }
                    return Ok(r);
                }
            }
            if start.elapsed() > self.deadline {
                return Err(SubmitError::NotMined {
                    nonce,
                    waited: start.elapsed(),
                    bumps,
                });
            }
            if last_send.elapsed() > self.bump_after {
                fees = Fees {
                    max_fee_per_gas: fees.max_fee_per_gas + fees.max_fee_per_gas / 8 + 1,
                    max_priority_fee_per_gas: fees.max_priority_fee_per_gas + fees.max_priority_fee_per_gas / 8 + 1,
                };
                tx = self.wallet.sign(nonce, to, input.clone(), gas_limit, fees)?;
                sent.push(tx.hash);
                bumps += 1;
                last_send = tokio::time::Instant::now();
                match self.chain.send_raw(tx.raw.clone()).await {
                    Ok(_) => {}
                    // the earlier version was mined meanwhile: the next poll finds its receipt
                    Err(ChainError::NonceTooLow { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    async fn revert_reason(&self, to: Option<Address>, input: Bytes) -> String {
        match self.chain.estimate_gas(self.address(), to, input).await {
            Err(ChainError::CallReverted(data)) => decode_revert(&data),
            Err(e) => e.to_string(),
            Ok(_) => "reverted on chain; the same call succeeds now (state changed since)".to_owned(),
        }
    }

    /// Deploys a contract from its creation bytecode and ABI-encoded constructor arguments.
    pub async fn deploy(&mut self, bytecode: &[u8], args: Vec<u8>) -> Result<Address, SubmitError> {
        let mut code = bytecode.to_vec();
        code.extend_from_slice(&args);
        let r = self.submit(None, code.into()).await?;
        r.contract_address
            .ok_or(SubmitError::NoContractAddress { tx_hash: r.tx_hash })
    }

    /// Calls `call` on `to` in a transaction.
    pub async fn send<T: SolCall>(&mut self, to: Address, call: T) -> Result<Receipt, SubmitError> {
        self.submit(Some(to), call.abi_encode().into()).await
    }
}

/// A read-only call, decoded.
pub async fn view<C: Chain, T: SolCall>(chain: &C, to: Address, call: T) -> Result<T::Return, SubmitError> {
    let out = match chain.call(to, call.abi_encode().into()).await {
        Ok(o) => o,
        Err(ChainError::CallReverted(data)) => return Err(SubmitError::CallReverted(decode_revert(&data))),
        Err(e) => return Err(e.into()),
    };
    T::abi_decode_returns(&out).map_err(|source| SubmitError::Decode {
        what: T::SIGNATURE,
        source,
    })
}

/// Addresses of a deployed GridShare contract set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployment {
    /// The settlement token.
    pub token: Address,
    /// The vault.
    pub vault: Address,
}

/// Deploys the settlement token and the vault, with the submitter's account as admin and
/// settler, and `credit_line` µ of credit per account.
pub async fn deploy<C: Chain>(s: &mut Submitter<'_, C>, credit_line: u128) -> Result<Deployment, SubmitError> {
    let admin = s.address();
    let token_args = SettlementToken::constructorCall {
        name_: "GridShare Credit".into(),
        symbol_: "GSC".into(),
        admin,
    }
    .abi_encode();
    let token = s.deploy(&SettlementToken::BYTECODE, token_args).await?;
    let vault_args = EnergySettlementVault::constructorCall {
        token_: token,
        admin,
        creditLine_: credit_line,
    }
    .abi_encode();
    let vault = s.deploy(&EnergySettlementVault::BYTECODE, vault_args).await?;
    let role = view(s.chain(), vault, EnergySettlementVault::SETTLER_ROLECall {}).await?;
    s.send(vault, EnergySettlementVault::grantRoleCall { role, account: admin })
        .await?;
    Ok(Deployment { token, vault })
}

/// The vault's current batch cursor and state hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VaultState {
    /// Last fully settled batch.
    pub last_batch_id: u64,
    /// Next chunk of the batch in progress (0 = none).
    pub next_chunk: u32,
    /// Current state hash.
    pub state_hash: B256,
}

/// Reads the vault's cursor and state hash.
pub async fn vault_state<C: Chain>(chain: &C, vault: Address) -> Result<VaultState, SubmitError> {
    let c = view(chain, vault, EnergySettlementVault::cursorCall {}).await?;
    let state_hash = view(chain, vault, EnergySettlementVault::stateHashCall {}).await?;
    Ok(VaultState {
        last_batch_id: c.lastBatchId,
        next_chunk: c.nextChunk,
        state_hash,
    })
}

/// The dense account indices the vault uses in settlement calldata, mirrored off chain.
#[derive(Debug, Default, Clone)]
pub struct AccountIndex {
    by_address: HashMap<Address, u32>,
}

impl AccountIndex {
    /// Loads every registered account from the vault.
    pub async fn load<C: Chain>(chain: &C, vault: Address) -> Result<Self, SubmitError> {
        let n = view(chain, vault, EnergySettlementVault::accountCountCall {}).await?;
        let mut by_address = HashMap::new();
        let mut i = U256::ZERO;
        while i < n {
            let a = view(chain, vault, EnergySettlementVault::accountAtCall { index: i }).await?;
            by_address.insert(a, u32::try_from(i).unwrap_or(u32::MAX));
            i += U256::from(1u8);
        }
        Ok(Self { by_address })
    }

    /// The index of `account`, if registered.
    pub fn get(&self, account: &Address) -> Option<u32> {
        self.by_address.get(account).copied()
    }

    /// Registers the accounts not known yet (in batches of 200 per transaction) and records their
    /// indices.
    pub async fn ensure<C: Chain>(
        &mut self,
        s: &mut Submitter<'_, C>,
        vault: Address,
        accounts: impl IntoIterator<Item = Address>,
    ) -> Result<(), SubmitError> {
        let mut missing: Vec<Address> = accounts.into_iter().filter(|a| self.get(a).is_none()).collect();
        missing.sort();
        missing.dedup();
        for chunk in missing.chunks(200) {
            s.send(
                vault,
                EnergySettlementVault::registerAccountsCall {
                    accounts: chunk.to_vec(),
                },
            )
            .await?;
        }
        if !missing.is_empty() {
            *self = Self::load(s.chain(), vault).await?;
        }
        Ok(())
    }
}

/// One settlement batch in the vault's calldata form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnchainBatch {
    /// Sequential batch id.
    pub batch_id: u64,
    /// Root of the batch's trades.
    pub trades_root: B256,
    /// `(account index, delta)` sorted by index, summing to zero.
    pub deltas: Vec<(u32, i128)>,
}

impl OnchainBatch {
    /// The packed delta words `(index << 128) | uint128(int128 delta)`.
    pub fn words(&self) -> Vec<U256> {
        self.deltas
            .iter()
            .map(|(i, d)| (U256::from(*i) << 128) | U256::from(*d as u128))
            .collect()
    }

    /// Splits into chunks of at most `max_accounts` deltas, keeping index order.
    pub fn chunks(&self, max_accounts: usize) -> Vec<Vec<U256>> {
        self.words().chunks(max_accounts.max(1)).map(<[U256]>::to_vec).collect()
    }

    /// The vault call that applies chunk `chunk` of `chunks` (from [`Self::chunks`]) on top of
    /// the vault's state hash `prev`; None when there is no such chunk.
    pub fn chunk_call(
        &self,
        chunks: &[Vec<U256>],
        chunk: u32,
        prev: B256,
    ) -> Option<EnergySettlementVault::settleIntervalCall> {
        Some(EnergySettlementVault::settleIntervalCall {
            batchId: self.batch_id,
            chunk,
            chunkCount: u32::try_from(chunks.len()).unwrap_or(u32::MAX),
            prevStateHash: prev,
            root: self.trades_root,
            deltas: chunks.get(chunk as usize)?.clone(),
        })
    }
}

/// The state hash the vault computes for one chunk.
pub fn next_state_hash(prev: B256, batch_id: u64, chunk: u32, chunk_count: u32, root: B256, words: &[U256]) -> B256 {
    let deltas_hash = keccak256(words.abi_encode_packed());
    keccak256((prev, batch_id, chunk, chunk_count, root, deltas_hash).abi_encode_packed())
}

/// Settles `batch` in chunks of at most `max_accounts` accounts, resuming after the chunks the
/// vault has already applied (so a retry after a crash never applies a chunk twice). Returns the
/// receipts of the chunks sent now.
pub async fn settle_batch<C: Chain>(
    s: &mut Submitter<'_, C>,
    vault: Address,
    batch: &OnchainBatch,
    max_accounts: usize,
) -> Result<Vec<Receipt>, SubmitError> {
    let chunks = batch.chunks(max_accounts);
    let mut receipts = Vec::new();
    loop {
        let st = vault_state(s.chain(), vault).await?;
        if st.last_batch_id >= batch.batch_id {
            return Ok(receipts);
        }
        let Some(call) = batch.chunk_call(&chunks, st.next_chunk, st.state_hash) else {
            return Err(SubmitError::UnexpectedChunk {
                batch_id: batch.batch_id,
                expected: st.next_chunk,
                chunks: chunks.len(),
            });
        };
        receipts.push(s.send(vault, call).await?);
    }
}
