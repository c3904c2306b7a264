//! Chain backends behind one trait: a JSON-RPC node ([`RpcChain`], alloy) and the in-process EVM
//! ([`EvmChain`], revm). Settlement signs every transaction itself with an explicit nonce and
//! hands the backend raw signed bytes, so both backends see exactly the same transactions.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use alloy::consensus::transaction::SignerRecoverable;
use alloy::consensus::{Transaction as _, TxEnvelope};
use alloy::eips::eip2718::Decodable2718;
use alloy::network::{Ethereum, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes, TxKind, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::TransactionRequest;
use revm::context::result::{EVMError, ExecutionResult, HaltReason, InvalidTransaction, Output};
use revm::context::tx::TxEnvBuildError;
use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use revm::database::{CacheDB, EmptyDB};
use revm::primitives::hardfork::SpecId;
use revm::state::AccountInfo;
use revm::{ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext};

/// What a backend reports of a mined transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Transaction hash.
    pub tx_hash: B256,
    /// Block it was mined in.
    pub block_number: u64,
    /// Hash of that block.
    pub block_hash: B256,
    /// False when the transaction reverted.
    pub success: bool,
    /// Gas used.
    pub gas_used: u64,
    /// Address of a contract it created.
    pub contract_address: Option<Address>,
}

/// Fee settings for a new transaction (EIP-1559).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fees {
    /// `maxFeePerGas` in wei.
    pub max_fee_per_gas: u128,
    /// `maxPriorityFeePerGas` in wei.
    pub max_priority_fee_per_gas: u128,
}

/// Errors of a chain backend, each naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The JSON-RPC URL does not parse.
    #[error("RPC URL {url:?}: {source}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it does not parse.
        #[source]
        source: <reqwest::Url as std::str::FromStr>::Err,
    },
    /// The node answered with an error.
    #[error("RPC {method} failed: {message}")]
    Rpc {
        /// The JSON-RPC method.
        method: &'static str,
        /// The node's message.
        message: String,
    },
    /// The node could not be reached (connection refused or reset, DNS, TLS).
    #[error("RPC {method}: node unreachable: {message}")]
    Unreachable {
        /// The JSON-RPC method.
        method: &'static str,
        /// The transport's message.
        message: String,
    },
    /// The node did not answer in time.
    #[error("RPC {method} timed out after {after:?}")]
    Timeout {
        /// The JSON-RPC method.
        method: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// The transaction's nonce is already used.
    #[error("nonce too low: account {account} is at nonce {expected}, transaction has {got}")]
    NonceTooLow {
        /// Sender.
        account: Address,
        /// The account's next nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The transaction's nonce leaves a gap.
    #[error("nonce gap: account {account} is at nonce {expected}, transaction has {got}")]
    NonceGap {
        /// Sender.
        account: Address,
        /// The account's next nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The sender cannot pay for gas.
    #[error("insufficient funds for gas: account {0}")]
    InsufficientFunds(Address),
    /// The raw bytes are not an EIP-2718 transaction.
    #[error("transaction rejected: cannot decode transaction: {source}{}", node_said(.node.as_deref()))]
    Undecodable {
        /// What the node answered, when it was the node that refused it.
        node: Option<String>,
        /// Why the bytes do not decode.
        #[source]
        source: alloy::eips::eip2718::Eip2718Error,
    },
    /// No sender can be recovered from the transaction's signature.
    #[error("transaction rejected: bad signature: no sender recovers from it")]
    BadSignature,
    /// The transaction is signed for another chain.
    #[error("transaction rejected: chain id {got:?}, expected {expected}")]
    WrongChainId {
        /// The transaction's chain id (none: a pre-EIP-155 transaction).
        got: Option<u64>,
        /// This chain's id.
        expected: u64,
    },
    /// The in-process EVM refused the transaction (gas cap, fees, code size, …).
    #[error("transaction rejected: {0}")]
    InvalidTransaction(InvalidTransaction),
    /// The in-process EVM cannot run a transaction of this kind (a field its type needs is missing).
    #[error("transaction rejected: the in-process EVM cannot run it: {0:?}")]
    UnsupportedTransaction(TxEnvBuildError),
    /// The in-process EVM stopped for a reason of its own (not the transaction's validity).
    #[error("transaction rejected: in-process EVM: {0:?}")]
    Evm(EVMError<std::convert::Infallible>),
    /// A call or gas estimate halted (out of gas, invalid opcode, stack overflow, …).
    #[error("transaction rejected: halted: {0}")]
    Halted(HaltReason),
    /// A call (not a transaction) reverted.
    #[error("call reverted: 0x{}", alloy::hex::encode(.0))]
    CallReverted(Bytes),
    /// The in-process chain's transaction log could not be read or written.
    #[error("chain log {path}: {source}")]
    Log {
        /// The log file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line of the in-process chain's log is not a hex-encoded transaction.
    #[error("chain log {path}: line {line}: {source}")]
    LogLine {
        /// The log file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// Why it does not decode.
        #[source]
        source: alloy::hex::FromHexError,
    },
    /// A logged transaction did not apply again on replay (the log was edited, or opened with
    /// other funded accounts).
    #[error("chain log {path}: line {line}: replay failed: {source}")]
    Replay {
        /// The log file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// Why the transaction did not apply.
        #[source]
        source: Box<ChainError>,
    },
}

/// `: node said "…"` after an error the node reported, nothing otherwise.
fn node_said(node: Option<&str>) -> String {
    node.map(|m| format!(" (node said: {m})")).unwrap_or_default()
}

/// The error of a transaction the in-process EVM did not run.
fn evm_error(e: EVMError<std::convert::Infallible>) -> ChainError {
    match e {
        EVMError::Transaction(t) => ChainError::InvalidTransaction(t),
        e => ChainError::Evm(e),
    }
}

impl ChainError {
    /// True when the same request may succeed later without anyone changing the transaction: the
    /// node was unreachable or slow or answered with an error, the sender cannot pay for gas
    /// yet, or the nonce does not fit the account right now. False for a transaction that is
    /// wrong in itself (gas cap, chain id, encoding) and for a revert.
    pub fn is_transient(&self) -> bool {
        self.kind() == ErrorKind::Transient
    }

    /// True when the transaction itself is refused, for good: sending the same bytes again can
    /// never succeed (a revert of a call is not this: it depends on the state).
    pub fn refuses_transaction(&self) -> bool {
        self.kind() == ErrorKind::Refused
    }

    /// Which of [`ErrorKind`] this error is; every variant is named, so a new one must be placed.
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Rpc { .. }
            | Self::Unreachable { .. }
            | Self::Timeout { .. }
            | Self::NonceTooLow { .. }
            | Self::NonceGap { .. }
            | Self::InsufficientFunds(_)
            | Self::Log { .. }
            | Self::LogLine { .. }
            | Self::Replay { .. } => ErrorKind::Transient,
            Self::Undecodable { .. }
            | Self::BadSignature
            | Self::WrongChainId { .. }
            | Self::InvalidTransaction(_)
            | Self::UnsupportedTransaction(_)
            | Self::Evm(_)
            | Self::Halted(_) => ErrorKind::Refused,
            Self::InvalidUrl { .. } | Self::CallReverted(_) => ErrorKind::Permanent,
        }
    }
}

/// How a [`ChainError`] behaves when the request is made again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorKind {
    /// It may succeed later unchanged ([`ChainError::is_transient`]).
    Transient,
    /// The transaction is refused for good ([`ChainError::refuses_transaction`]).
    Refused,
    /// Neither: a wrong URL, or a call that reverts in the current state.
    Permanent,
}

/// A chain settlement can post to.
pub trait Chain: Send + Sync {
    /// The chain id transactions must be signed for.
    fn chain_id(&self) -> impl Future<Output = Result<u64, ChainError>> + Send;
    /// The next nonce of `account` counting mined transactions only.
    fn nonce(&self, account: Address) -> impl Future<Output = Result<u64, ChainError>> + Send;
    /// Fees to offer for a new transaction.
    fn fees(&self) -> impl Future<Output = Result<Fees, ChainError>> + Send;
    /// Gas a call from `from` would use.
    fn estimate_gas(
        &self,
        from: Address,
        to: Option<Address>,
        data: Bytes,
    ) -> impl Future<Output = Result<u64, ChainError>> + Send;
    /// Broadcasts a signed transaction; returns its hash.
    fn send_raw(&self, raw: Bytes) -> impl Future<Output = Result<B256, ChainError>> + Send;
    /// The receipt of a mined transaction, `None` while it is not mined.
    fn receipt(&self, tx_hash: B256) -> impl Future<Output = Result<Option<Receipt>, ChainError>> + Send;
    /// The latest block number.
    fn block_number(&self) -> impl Future<Output = Result<u64, ChainError>> + Send;
    /// The hash of block `number`, `None` when it does not exist (yet, or after a reorg).
    fn block_hash(&self, number: u64) -> impl Future<Output = Result<Option<B256>, ChainError>> + Send;
    /// A read-only call at the latest block.
    fn call(&self, to: Address, data: Bytes) -> impl Future<Output = Result<Bytes, ChainError>> + Send;
}

// ------------------------------------------------------------------ JSON-RPC

/// A JSON-RPC node (anvil in CI, any Ethereum node in production), every request under a timeout.
#[derive(Debug, Clone)]
pub struct RpcChain {
    provider: RootProvider<Ethereum>,
    timeout: Duration,
}

impl RpcChain {
    /// Connects to `url` (http, or https with the system's certificate store).
    pub fn new(url: &str, timeout: Duration) -> Result<Self, ChainError> {
        // reqwest is built with rustls but no default crypto provider (aws-lc would mean a C
        // build): use ring. A provider installed earlier by the process stays.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let parsed = url.parse::<reqwest::Url>().map_err(|source| ChainError::InvalidUrl {
            url: url.to_owned(),
            source,
        })?;
        Ok(Self {
            provider: RootProvider::new_http(parsed),
            timeout,
        })
    }

    async fn run<T>(
        &self,
        method: &'static str,
        f: impl IntoFuture<Output = Result<T, alloy::transports::TransportError>>,
    ) -> Result<T, ChainError> {
        match tokio::time::timeout(self.timeout, f.into_future()).await {
            Err(_) => Err(ChainError::Timeout {
                method,
                after: self.timeout,
            }),
            Ok(Err(e)) => {
                // A revert of eth_call / eth_estimateGas comes back as an error response whose
                // data is the revert payload: keep it so the contract's error can be decoded.
                if let Some(data) = e.as_error_resp().and_then(|p| p.as_revert_data()) {
                    return Err(ChainError::CallReverted(data));
                }
                if e.as_error_resp().is_some() {
                    Err(ChainError::Rpc {
                        method,
                        message: e.to_string(),
                    })
                } else {
                    Err(ChainError::Unreachable {
                        method,
                        message: error_chain(&e),
                    })
                }
            }
            Ok(Ok(v)) => Ok(v),
        }
    }
}

/// An error with its causes ("sending request: connect: connection refused"): the transport's
/// top-level message alone rarely says what failed.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

/// Sender and nonce of a raw transaction, for error messages.
fn sender_and_nonce(raw: &[u8], node: &str) -> Result<(Address, u64), ChainError> {
    let envelope = TxEnvelope::decode_2718(&mut &raw[..]).map_err(|source| ChainError::Undecodable {
        node: Some(node.to_owned()),
        source,
    })?;
    let sender = envelope.recover_signer().map_err(|_| ChainError::BadSignature)?;
    Ok((sender, envelope.nonce()))
}

impl Chain for RpcChain {
    async fn chain_id(&self) -> Result<u64, ChainError> {
        self.run("eth_chainId", self.provider.get_chain_id()).await
    }

    async fn nonce(&self, account: Address) -> Result<u64, ChainError> {
        self.run(
            "eth_getTransactionCount",
            self.provider.get_transaction_count(account).latest(),
        )
        .await
    }

    async fn fees(&self) -> Result<Fees, ChainError> {
        let est = self
            .run("eth_feeHistory", self.provider.estimate_eip1559_fees())
            .await?;
        Ok(Fees {
            max_fee_per_gas: est.max_fee_per_gas,
            max_priority_fee_per_gas: est.max_priority_fee_per_gas,
        })
    }

    async fn estimate_gas(&self, from: Address, to: Option<Address>, data: Bytes) -> Result<u64, ChainError> {
        let mut req = TransactionRequest::default().with_from(from).with_input(data);
        req = match to {
            Some(to) => req.with_to(to),
            None => req.with_kind(TxKind::Create),
        };
        self.run("eth_estimateGas", self.provider.estimate_gas(req)).await
    }

    async fn send_raw(&self, raw: Bytes) -> Result<B256, ChainError> {
        let message = match self
            .run("eth_sendRawTransaction", self.provider.send_raw_transaction(&raw))
            .await
        {
            Ok(pending) => return Ok(*pending.tx_hash()),
            Err(ChainError::Rpc { message, .. }) => message,
            Err(e) => return Err(e),
        };
        // Nodes word these differently (geth, reth, anvil): match the common phrases.
        let lower = message.to_ascii_lowercase();
        if lower.contains("already known") || lower.contains("already imported") || lower.contains("known transaction")
        {
            return Ok(alloy::primitives::keccak256(&raw)); // the node has it: re-sending is harmless
        }
        let (account, got) = sender_and_nonce(&raw, &message)?;
        if lower.contains("insufficient funds") {
            return Err(ChainError::InsufficientFunds(account));
        }
        if lower.contains("nonce too low") {
            let expected = self.nonce(account).await.unwrap_or(got + 1);
            return Err(ChainError::NonceTooLow { account, expected, got });
        }
        Err(ChainError::Rpc {
            method: "eth_sendRawTransaction",
            message,
        })
    }

    async fn receipt(&self, tx_hash: B256) -> Result<Option<Receipt>, ChainError> {
        let r = self
            .run(
                "eth_getTransactionReceipt",
                self.provider.get_transaction_receipt(tx_hash),
            )
            .await?;
        Ok(r.and_then(|r| {
            Some(Receipt {
                tx_hash,
                block_number: r.block_number?,
                block_hash: r.block_hash?,
                success: r.status(),
                gas_used: r.gas_used,
                contract_address: r.contract_address,
            })
        }))
    }

    async fn block_number(&self) -> Result<u64, ChainError> {
        self.run("eth_blockNumber", self.provider.get_block_number()).await
    }

    async fn block_hash(&self, number: u64) -> Result<Option<B256>, ChainError> {
        let block = self
            .run("eth_getBlockByNumber", self.provider.get_block_by_number(number.into()))
            .await?;
        Ok(block.map(|b| b.header.hash))
    }

    async fn call(&self, to: Address, data: Bytes) -> Result<Bytes, ChainError> {
        let req = TransactionRequest::default().with_to(to).with_input(data);
        self.run("eth_call", self.provider.call(req)).await
    }
}

// ------------------------------------------------------------- in-process EVM

/// Chain id of the in-process EVM (the one anvil uses by default).
pub const EVM_CHAIN_ID: u64 = 31_337;

/// An in-process EVM (revm, Osaka rules, so EIP-7825's 2^24 gas cap per transaction holds) that
/// mines every valid transaction into its own block at once. With a log file it is durable: each
/// mined transaction's raw bytes are appended (and synced) before the receipt is visible, and
/// opening replays the log, so the chain survives a restart of the process.
#[derive(Debug)]
pub struct EvmChain {
    state: Mutex<EvmState>,
}

#[derive(Debug)]
struct EvmState {
    db: CacheDB<EmptyDB>,
    block: u64,
    block_hashes: Vec<B256>,
    receipts: HashMap<B256, Receipt>,
    log: Option<(PathBuf, File)>,
}

/// Start of the in-process chain's clock (unix seconds); block `n` has timestamp start + 12 n.
const GENESIS_TIME: u64 = 1_767_225_600;

impl EvmChain {
    /// A fresh chain, kept in memory only, with `funded` accounts holding 10 000 ether each.
    pub fn in_memory(funded: &[Address]) -> Self {
        let mut db = CacheDB::new(EmptyDB::default());
        for a in funded {
            db.insert_account_info(
                *a,
                AccountInfo {
                    balance: U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18u64)),
                    ..AccountInfo::default()
                },
            );
        }
        Self {
            state: Mutex::new(EvmState {
                db,
                block: 0,
                block_hashes: vec![B256::ZERO],
                receipts: HashMap::new(),
                log: None,
            }),
        }
    }

    /// Opens (or creates) a durable chain whose transactions are logged in `path`; the log is
    /// replayed on open. `funded` must be the same on every open. A torn last line (a crash while
    /// it was being written, before its transaction was acknowledged) is cut off and reported,
    /// as the engine's journal does; damage anywhere else is an error naming the line.
    pub fn open(path: &Path, funded: &[Address]) -> Result<Self, ChainError> {
        let chain = Self::in_memory(funded);
        let log_err = |source: std::io::Error| ChainError::Log {
            path: path.to_path_buf(),
            source,
        };
        if path.exists() {
            cut_torn_tail(path).map_err(log_err)?;
            let reader = BufReader::new(File::open(path).map_err(log_err)?);
            for (n, line) in reader.lines().enumerate() {
                let line = line.map_err(log_err)?;
                if line.trim().is_empty() {
                    continue;
                }
                let raw = alloy::hex::decode(line.trim()).map_err(|source| ChainError::LogLine {
                    path: path.to_path_buf(),
                    line: n + 1,
                    source,
                })?;
                chain.apply(Bytes::from(raw)).map_err(|e| ChainError::Replay {
                    path: path.to_path_buf(),
                    line: n + 1,
                    source: Box::new(e),
                })?;
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(log_err)?;
        chain.lock().log = Some((path.to_path_buf(), file));
        Ok(chain)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, EvmState> {
        // A panic while holding the lock cannot leave the state half-written (every mutation
        // is a whole transaction), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn apply(&self, raw: Bytes) -> Result<B256, ChainError> {
        let envelope = TxEnvelope::decode_2718(&mut raw.as_ref())
            .map_err(|source| ChainError::Undecodable { node: None, source })?;
        let caller = envelope.recover_signer().map_err(|_| ChainError::BadSignature)?;
        let hash = *envelope.tx_hash();
        let mut st = self.lock();
        if st.receipts.contains_key(&hash) {
            return Ok(hash); // already mined: a re-broadcast is harmless
        }
        if envelope.chain_id() != Some(EVM_CHAIN_ID) {
            return Err(ChainError::WrongChainId {
                got: envelope.chain_id(),
                expected: EVM_CHAIN_ID,
            });
        }
        let expected = st.db.cache.accounts.get(&caller).map_or(0, |a| a.info.nonce);
        let got = envelope.nonce();
        if got < expected {
            return Err(ChainError::NonceTooLow {
                account: caller,
                expected,
                got,
            });
        }
        if got > expected {
            return Err(ChainError::NonceGap {
                account: caller,
                expected,
                got,
            });
        }
        let tx = TxEnv::builder()
            .tx_type(Some(envelope.tx_type() as u8))
            .caller(caller)
            .gas_limit(envelope.gas_limit())
            .max_fee_per_gas(envelope.max_fee_per_gas())
            .gas_priority_fee(envelope.max_priority_fee_per_gas())
            .kind(envelope.kind())
            .value(envelope.value())
            .data(envelope.input().clone())
            .nonce(got)
            .chain_id(Some(EVM_CHAIN_ID))
            .build()
            .map_err(ChainError::UnsupportedTransaction)?;
        let block = st.block + 1;
        let db = std::mem::take(&mut st.db);
        let mut evm = Self::context(db, block).build_mainnet();
        let result = evm.transact_commit(tx);
        st.db = evm.ctx.journaled_state.database;
        let result = result.map_err(|e| match e {
            EVMError::Transaction(InvalidTransaction::LackOfFundForMaxFee { .. }) => {
                ChainError::InsufficientFunds(caller)
            }
            e => evm_error(e),
        })?;
        if let Some((path, file)) = st.log.as_mut() {
            let line = format!("{}\n", alloy::hex::encode(&raw));
            file.write_all(line.as_bytes())
                .and_then(|()| file.sync_data())
                .map_err(|source| ChainError::Log {
                    path: path.clone(),
                    source,
                })?;
        }
        let (success, gas_used, contract_address) = match &result {
            ExecutionResult::Success { gas, output, .. } => {
                let created = match output {
                    Output::Create(_, addr) => *addr,
                    Output::Call(_) => None,
                };
                (true, gas.tx_gas_used(), created)
            }
            ExecutionResult::Revert { gas, .. } => (false, gas.tx_gas_used(), None),
            ExecutionResult::Halt { gas, .. } => (false, gas.tx_gas_used(), None),
        };
        let block_hash =
            alloy::primitives::keccak256([st.block_hashes[st.block as usize].as_slice(), hash.as_slice()].concat());
        st.block = block;
        st.block_hashes.push(block_hash);
        st.receipts.insert(
            hash,
            Receipt {
                tx_hash: hash,
                block_number: block,
                block_hash,
                success,
                gas_used,
                contract_address,
            },
        );
        Ok(hash)
    }

    /// Runs a call on the next block without committing it (`eth_call` / `eth_estimateGas`).
    fn simulate(&self, from: Address, kind: TxKind, data: Bytes) -> Result<ExecutionResult, ChainError> {
        let mut st = self.lock();
        let block = st.block + 1;
        let db = std::mem::take(&mut st.db);
        let mut evm = Self::context(db, block)
            .modify_cfg_chained(|c| c.disable_nonce_check = true)
            .build_mainnet();
        let tx = TxEnv::builder()
            .caller(from)
            .kind(kind)
            .data(data)
            .chain_id(Some(EVM_CHAIN_ID))
            .build_fill();
        let out = evm.transact(tx);
        st.db = evm.ctx.journaled_state.database;
        Ok(out.map_err(evm_error)?.result)
    }

    fn context(db: CacheDB<EmptyDB>, block: u64) -> Context<BlockEnv, TxEnv, CfgEnv, CacheDB<EmptyDB>> {
        Context::mainnet()
            .with_db(db)
            .modify_cfg_chained(|c| {
                c.chain_id = EVM_CHAIN_ID;
                c.set_spec_and_mainnet_gas_params(SpecId::OSAKA);
            })
            .modify_block_chained(|b| {
                b.number = U256::from(block);
                b.timestamp = U256::from(GENESIS_TIME + 12 * block);
                b.gas_limit = 60_000_000;
                b.basefee = 0;
            })
    }
}

impl Chain for EvmChain {
    async fn chain_id(&self) -> Result<u64, ChainError> {
        Ok(EVM_CHAIN_ID)
    }

    async fn nonce(&self, account: Address) -> Result<u64, ChainError> {
        Ok(self.lock().db.cache.accounts.get(&account).map_or(0, |a| a.info.nonce))
    }

    async fn fees(&self) -> Result<Fees, ChainError> {
        Ok(Fees {
            max_fee_per_gas: 2_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
        })
    }

    async fn estimate_gas(&self, from: Address, to: Option<Address>, data: Bytes) -> Result<u64, ChainError> {
        match self.simulate(from, to.map_or(TxKind::Create, TxKind::Call), data)? {
            ExecutionResult::Success { gas, .. } => Ok(gas.tx_gas_used()),
            ExecutionResult::Revert { output, .. } => Err(ChainError::CallReverted(output)),
            ExecutionResult::Halt { reason, .. } => Err(ChainError::Halted(reason)),
        }
    }

    async fn send_raw(&self, raw: Bytes) -> Result<B256, ChainError> {
        self.apply(raw)
    }

    async fn receipt(&self, tx_hash: B256) -> Result<Option<Receipt>, ChainError> {
        Ok(self.lock().receipts.get(&tx_hash).cloned())
    }

    async fn block_number(&self) -> Result<u64, ChainError> {
        Ok(self.lock().block)
    }

    async fn block_hash(&self, number: u64) -> Result<Option<B256>, ChainError> {
        Ok(usize::try_from(number)
            .ok()
            .and_then(|n| self.lock().block_hashes.get(n).copied()))
    }

    async fn call(&self, to: Address, data: Bytes) -> Result<Bytes, ChainError> {
        match self.simulate(Address::ZERO, TxKind::Call(to), data)? {
            ExecutionResult::Success { output, .. } => Ok(output.into_data()),
            ExecutionResult::Revert { output, .. } => Err(ChainError::CallReverted(output)),
            ExecutionResult::Halt { reason, .. } => Err(ChainError::Halted(reason)),
        }
    }
}

/// Cuts an unterminated last line off the chain log. Each transaction is written as one line
/// ending in `\n` and synced before it is acknowledged, so a last line without its `\n` is a
/// write a crash interrupted: its transaction was never acknowledged and never happened.
fn cut_torn_tail(path: &Path) -> std::io::Result<()> {
    let bytes = std::fs::read(path)?;
    if bytes.last().is_none_or(|&b| b == b'\n') {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(keep as u64)?;
    file.sync_all()?;
    tracing::warn!(
        log = %path.display(),
        cut_bytes = bytes.len() - keep,
        kept_bytes = keep,
        "chain log: a torn last line (a write a crash interrupted) was cut off"
    );
    Ok(())
}
