//! Starting settlement for `gridshare serve`: the chain (the in-process EVM by default, durable in
//! the data directory, or a JSON-RPC node), the settler key, the contract deployment, and the
//! task that runs [`SettlementStep::run`] on a timer until shutdown — finishing the step it is in.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use std::path::PathBuf;

use alloy::primitives::{Address, keccak256};
use alloy::signers::local::{LocalSignerError, PrivateKeySigner};
use gridshare_domain::MicroPerKwh;
use gridshare_domain::accounts::Custody;
use gridshare_market::epoch::collect::Bonds;
use gridshare_market::{Clock, Metrics};
use gridshare_settlement::chain::{Chain, ChainError, EvmChain, RpcChain};
use gridshare_settlement::governance::GovernanceContracts;
use gridshare_settlement::ledger::Tariff;
use gridshare_settlement::onchain::{Deployment, SubmitError, Submitter, Wallet, deploy};
use gridshare_settlement::queue::QueueError;
use gridshare_settlement::rewards::RewardContracts;
use gridshare_settlement::slashing::GatewayContracts;
use gridshare_settlement::step::{Accounts, SettlementStep, StepConfig, StepError};
use gridshare_storage::Db;
use gridshare_web::balances::OnChain;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::watch;

use crate::config::Config;

/// Why settlement could not start, naming the setting, file or chain that is wrong.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    /// A configured address does not parse.
    #[error("{key}: {value:?} is not an address: {source}")]
    Address {
        /// The setting (`chain.vault`, `chain.community`, …).
        key: String,
        /// Its value.
        value: String,
        /// Why it is not an address.
        #[source]
        source: alloy::hex::FromHexError,
    },
    /// The settler key (configured, or kept in the data directory) is not a private key.
    #[error("{origin}: {source}")]
    SettlerKey {
        /// `chain.settler_key` or the key file.
        origin: String,
        /// Why it is not a key.
        #[source]
        source: LocalSignerError,
    },
    /// A key's file (the settler's, the custody seed) could not be read, or a new key made and
    /// written there.
    #[error("{0}")]
    KeyFile(String),
    /// A file in the data directory could not be written or parsed.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `deployment.json` is not what settlement writes.
    #[error("{}: {source}", path.display())]
    DeploymentFile {
        /// The file.
        path: PathBuf,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// The kept deployment is on another chain than the node's.
    #[error("{}: deployed on chain {deployed_on}, but the node is chain {chain}", path.display())]
    OtherChain {
        /// `deployment.json`.
        path: PathBuf,
        /// The chain it names.
        deployed_on: u64,
        /// The node's chain.
        chain: u64,
    },
    /// The chain could not be opened or asked.
    #[error("{}{source}", url.as_deref().map(|u| format!("chain {u}: ")).unwrap_or_default())]
    Chain {
        /// The JSON-RPC node, when it is one.
        url: Option<String>,
        /// What failed.
        #[source]
        source: ChainError,
    },
    /// Reading the settler's nonce before deploying failed.
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// Deploying the contracts failed.
    #[error("deploying the contracts: {0}")]
    Deploy(#[source] SubmitError),
}

/// `gridshare serve` reports what stopped it as text (its caller prints it and exits).
impl From<SettleError> for String {
    fn from(e: SettleError) -> Self {
        e.to_string()
    }
}

/// A system account's address: configured, or a derived placeholder nobody holds a key for.
fn system_account(configured: Option<&str>, name: &str) -> Result<Address, SettleError> {
    match configured {
        Some(s) => s.parse().map_err(|source| SettleError::Address {
            key: format!("chain.{name}"),
            value: s.to_owned(),
            source,
        }),
        None => Ok(Address::from_slice(
            &keccak256(format!("gridshare:account:{name}"))[12..],
        )),
    }
}

/// The settler key: configured, or (in-process EVM only) generated once and kept in the data
/// directory, readable by its owner only.
fn settler_key(cfg: &Config) -> Result<PrivateKeySigner, SettleError> {
    if let Some(k) = &cfg.chain.settler_key {
        return PrivateKeySigner::from_str(k.trim()).map_err(|source| SettleError::SettlerKey {
            origin: "chain.settler_key".into(),
            source,
        });
    }
    let path = cfg.data_dir.join("settler.key");
    let (text, _) = crate::secrets::load_or_make(&path, "settler key", crate::secrets::Readers::Any)
        .map_err(SettleError::KeyFile)?;
    PrivateKeySigner::from_str(&text).map_err(|source| SettleError::SettlerKey {
        origin: path.display().to_string(),
        source,
    })
}

#[derive(Debug, Serialize, Deserialize)]
struct DeploymentFile {
    chain_id: u64,
    token: Address,
    vault: Address,
    /// The reward token and distributor (deployed by a later version when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reward_token: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    distributor: Option<Address>,
    /// The gateway registry and the staking contract (deployed by a later version when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    registry: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    staking: Option<Address>,
    /// The governed parameters, their timelock and governor (deployed by a later version when
    /// absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parameters: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timelock: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    governor: Option<Address>,
}

/// The incentive contracts, when rewards are on.
#[derive(Debug, Clone, Copy)]
struct Incentives {
    rewards: RewardContracts,
    gateways: GatewayContracts,
    governance: GovernanceContracts,
}

/// Deploys the gateway registry and staking over the reward token.
async fn deploy_gateways<C: Chain>(
    chain: &C,
    wallet: &Wallet,
    token: Address,
) -> Result<GatewayContracts, SettleError> {
    let mut s = Submitter::new(chain, wallet.clone()).await?;
    let g = gridshare_settlement::slashing::deploy(
        &mut s,
        token,
        crate::slashing::MIN_BOND,
        crate::slashing::UNBONDING_COOLDOWN_S,
    )
    .await
    .map_err(SettleError::Deploy)?;
    tracing::info!(registry = %g.registry, staking = %g.staking, "gateway registry and staking deployed");
    Ok(g)
}

/// The reward contracts' emission parameters, from `[rewards]`.
fn emission(cfg: &Config) -> gridshare_settlement::rewards::Emission {
    gridshare_settlement::rewards::Emission {
        cap: cfg.rewards.cap,
        initial_budget: cfg.rewards.initial_budget,
        halving_epochs: cfg.rewards.halving_epochs,
    }
}

/// The vault, and the incentive contracts (reward token and distributor, gateway registry and
/// staking) when rewards are on: configured (`chain.vault`; the other contracts are then not
/// deployed by the service), kept in `data_dir/deployment.json`, or deployed now (those an older
/// deployment lacks are added to it).
async fn deployment<C: Chain>(
    chain: &C,
    cfg: &Config,
    wallet: &Wallet,
) -> Result<(Address, Option<Incentives>), SettleError> {
    if let Some(v) = &cfg.chain.vault {
        let vault = v.parse().map_err(|source| SettleError::Address {
            key: "chain.vault".into(),
            value: v.clone(),
            source,
        })?;
        return Ok((vault, None));
    }
    let path = cfg.data_dir.join("deployment.json");
    let chain_id = chain
        .chain_id()
        .await
        .map_err(|source| SettleError::Chain { url: None, source })?;
    let mut file = match std::fs::read_to_string(&path) {
        Ok(text) => {
            let d: DeploymentFile = match serde_json::from_str(&text) {
                Ok(d) => d,
                Err(source) => return Err(SettleError::DeploymentFile { path, source }),
            };
            if d.chain_id != chain_id {
                return Err(SettleError::OtherChain {
                    path,
                    deployed_on: d.chain_id,
                    chain: chain_id,
                });
            }
            d
        }
        Err(_) => {
            let mut s = Submitter::new(chain, wallet.clone()).await?;
            let Deployment { token, vault } = deploy(&mut s, cfg.chain.credit_line)
                .await
                .map_err(SettleError::Deploy)?;
            tracing::info!(%token, %vault, "settlement contracts deployed");
            let d = DeploymentFile {
                chain_id,
                token,
                vault,
                reward_token: None,
                distributor: None,
                registry: None,
                staking: None,
                parameters: None,
                timelock: None,
                governor: None,
            };
            write_deployment(&path, &d)?;
            d
        }
    };
    if !cfg.rewards.enabled {
        return Ok((file.vault, None));
    }
    let rewards = match (file.reward_token, file.distributor) {
        (Some(token), Some(distributor)) => RewardContracts { token, distributor },
        _ => {
            let mut s = Submitter::new(chain, wallet.clone()).await?;
            let r = gridshare_settlement::rewards::deploy(&mut s, emission(cfg))
                .await
                .map_err(SettleError::Deploy)?;
            tracing::info!(token = %r.token, distributor = %r.distributor, "reward contracts deployed");
            file.reward_token = Some(r.token);
            file.distributor = Some(r.distributor);
            write_deployment(&path, &file)?;
            r
        }
    };
    let gateways = match (file.registry, file.staking) {
        (Some(registry), Some(staking)) => GatewayContracts { registry, staking },
        _ => {
            let g = deploy_gateways(chain, wallet, rewards.token).await?;
            file.registry = Some(g.registry);
            file.staking = Some(g.staking);
            write_deployment(&path, &file)?;
            g
        }
    };
    let governance = match (file.parameters, file.timelock, file.governor) {
        (Some(parameters), Some(timelock), Some(governor)) => GovernanceContracts {
            parameters,
            timelock,
            governor,
        },
        _ => {
            let mut s = Submitter::new(chain, wallet.clone()).await?;
            let (initial, minimum, maximum) = crate::governance::initial(cfg);
            let g = gridshare_settlement::governance::deploy(
                &mut s,
                rewards.token,
                gateways.staking,
                crate::governance::settings(cfg),
                initial,
                minimum,
                maximum,
            )
            .await
            .map_err(SettleError::Deploy)?;
            tracing::info!(parameters = %g.parameters, timelock = %g.timelock, governor = %g.governor, "governance deployed");
            file.parameters = Some(g.parameters);
            file.timelock = Some(g.timelock);
            file.governor = Some(g.governor);
            write_deployment(&path, &file)?;
            g
        }
    };
    // the bond and slashing rules the community sets in the parameters are the staking
    // contract's: the parameters pass every change on (granted once, while the service is still
    // the staking contract's admin)
    let mut s = Submitter::new(chain, wallet.clone()).await?;
    if gridshare_settlement::governance::bind_staking(&mut s, governance.parameters, gateways.staking)
        .await
        .map_err(SettleError::Deploy)?
    {
        tracing::info!(parameters = %governance.parameters, staking = %gateways.staking, "the staking contract follows the governed bond rules");
    }
    // from now on only the community (a passed proposal, through the timelock) may grant a minter
    // or change the bond and slashing rules
    let handed = gridshare_settlement::governance::hand_over(
        &mut s,
        &[rewards.token, rewards.distributor, gateways.staking],
        governance.timelock,
    )
    .await
    .map_err(SettleError::Deploy)?;
    if handed > 0 {
        tracing::info!(contracts = handed, timelock = %governance.timelock, "admin roles handed to the timelock");
    }
    Ok((
        file.vault,
        Some(Incentives {
            rewards,
            gateways,
            governance,
        }),
    ))
}

fn write_deployment(path: &Path, file: &DeploymentFile) -> Result<(), SettleError> {
    std::fs::write(path, serde_json::to_string_pretty(file).unwrap_or_default()).map_err(|source| SettleError::File {
        path: path.to_owned(),
        source,
    })
}

/// The settlement task (None: settlement is off) and a reader of vault balances for the API.
pub type Started = (Option<tokio::task::JoinHandle<()>>, Option<Arc<dyn OnChain>>);

/// Reads vault balances over the settlement chain.
#[derive(Debug)]
struct VaultBalances<C> {
    chain: Arc<C>,
    vault: Address,
}

impl<C: Chain + std::fmt::Debug + 'static> OnChain for VaultBalances<C> {
    fn balance_of(
        &self,
        account: Address,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<i128, String>> + Send + '_>> {
        Box::pin(async move {
            let b = gridshare_settlement::onchain::view(
                &*self.chain,
                self.vault,
                gridshare_settlement::contracts::EnergySettlementVault::balanceOfCall { account },
            )
            .await
            .map_err(|e| format!("reading the vault: {e}"))?;
            i128::try_from(b).map_err(|e| format!("vault balance out of range: {e}"))
        })
    }
}

/// Starts settlement; the task ends after the step in progress when `shutdown` turns true.
pub async fn start(
    cfg: &Config,
    db: Db,
    clock: Clock,
    shutdown: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    market: gridshare_market::Market,
    bonds: watch::Sender<Option<Bonds>>,
) -> Result<Started, SettleError> {
    if !cfg.settlement.enabled {
        // no chain: no bonds to read, and nothing goes on chain; epochs count every gateway
        bonds.send_replace(Some(Bonds::NoMinimum));
        return Ok((None, None));
    }
    let key = settler_key(cfg)?;
    // the custodial accounts, for participants added while the service runs
    let custody = crate::custody::load(cfg).map_err(SettleError::KeyFile)?;
    let step = StepConfig {
        tariff: Tariff {
            import: MicroPerKwh(cfg.settlement.import_tariff),
            export: MicroPerKwh(cfg.settlement.export_tariff),
        },
        rules: cfg.market.intervals,
        max_accounts: cfg.settlement.max_accounts,
        confirmations: cfg.chain.confirmations,
        true_up_window_ms: i64::from(cfg.settlement.true_up_hours) * 3_600_000,
    };
    let system = (
        system_account(cfg.chain.community.as_deref(), "community")?,
        system_account(cfg.chain.grid_operator.as_deref(), "grid_operator")?,
        system_account(cfg.chain.utility.as_deref(), "utility")?,
    );
    let task = Task {
        db,
        clock,
        step,
        system,
        every: Duration::from_millis(cfg.settlement.every_ms),
        shutdown,
        metrics,
        market,
        bonds,
        custody,
    };
    match &cfg.chain.rpc_url {
        Some(url) => {
            let chain_error = |source| SettleError::Chain {
                url: Some(url.clone()),
                source,
            };
            // an invalid URL names itself
            let chain = RpcChain::new(url, Duration::from_millis(cfg.chain.rpc_timeout_ms))
                .map_err(|source| SettleError::Chain { url: None, source })?;
            let wallet = Wallet::new(key, chain.chain_id().await.map_err(chain_error)?);
            let (vault, incentives) = deployment(&chain, cfg, &wallet).await?;
            Ok(task.spawn(chain, wallet, vault, incentives).await)
        }
        None => {
            let log = cfg.data_dir.join("chain.log");
            let chain =
                EvmChain::open(&log, &[key.address()]).map_err(|source| SettleError::Chain { url: None, source })?;
            let wallet = Wallet::new(key, gridshare_settlement::chain::EVM_CHAIN_ID);
            let (vault, incentives) = deployment(&chain, cfg, &wallet).await?;
            tracing::info!(chain = %log.display(), %vault, "in-process EVM");
            Ok(task.spawn(chain, wallet, vault, incentives).await)
        }
    }
}

/// What the settlement task needs besides its chain, wallet and vault.
struct Task {
    db: Db,
    clock: Clock,
    step: StepConfig,
    system: (Address, Address, Address),
    every: Duration,
    shutdown: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    /// The market, which the governed fees go to.
    market: gridshare_market::Market,
    /// Where the bonds read from chain go, for the epoch task.
    bonds: watch::Sender<Option<Bonds>>,
    /// The custodial accounts, assigned to participants added while the service runs.
    custody: Custody,
}

impl Task {
    /// Spawns `run` on `chain` and returns it with a reader of the vault's balances; the governed
    /// parameters are read once first, so that no book opens before they apply.
    async fn spawn<C: Chain + std::fmt::Debug + 'static>(
        self,
        chain: C,
        wallet: Wallet,
        vault: Address,
        incentives: Option<Incentives>,
    ) -> Started {
        let Task {
            db,
            clock,
            step,
            system,
            every,
            shutdown,
            metrics,
            market,
            bonds,
            custody,
        } = self;
        if incentives.is_none() {
            bonds.send_replace(Some(Bonds::NoMinimum));
        }
        let mut governance = crate::governance::GovernanceStep::default();
        if let Some(c) = incentives
            && let Err(e) = governance.run(&chain, &db, &market, c.governance.parameters).await
        {
            tracing::warn!(error = %e, "reading the governed parameters: the configured fees apply until it works");
        }
        let chain = Arc::new(chain);
        let reader: Arc<dyn OnChain> = Arc::new(VaultBalances {
            chain: chain.clone(),
            vault,
        });
        let task = tokio::spawn(run(
            chain, db, clock, wallet, vault, incentives, step, system, every, shutdown, metrics, market, governance,
            bonds, custody,
        ));
        (Some(task), Some(reader))
    }
}

#[allow(clippy::too_many_arguments)]
async fn run<C: Chain + 'static>(
    chain: Arc<C>,
    db: Db,
    clock: Clock,
    wallet: Wallet,
    vault: Address,
    incentives: Option<Incentives>,
    cfg: StepConfig,
    (community, grid, utility): (Address, Address, Address),
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    market: gridshare_market::Market,
    mut governance_step: crate::governance::GovernanceStep,
    bonds: watch::Sender<Option<Bonds>>,
    custody: Custody,
) {
    let mut step = None;
    let mut rewards_step = crate::rewards::RewardsStep::default();
    let mut slashing_step = crate::slashing::SlashingStep::new(bonds);
    loop {
        if *shutdown.borrow() {
            return;
        }
        // participants added since (by the CLI, or another instance) get their account before
        // the accounts are read
        if let Err(e) = crate::custody::assign(&db, &custody).await {
            tracing::warn!(error = %e, "settlement: assigning custodial accounts");
        }
        let accounts = Accounts::load(&db, community, grid, utility).await;
        match (accounts, &mut step) {
            (Err(e), _) => tracing::warn!(error = %e, "settlement: loading accounts"),
            (Ok(a), Some(s)) => {
                let s: &mut SettlementStep<'_, C> = s;
                s.accounts = a;
            }
            (Ok(a), None) => match SettlementStep::new(&*chain, &db, wallet.clone(), vault, cfg, a).await {
                Ok(s) => step = Some(s),
                Err(e) => tracing::warn!(error = %e, "settlement: reading the vault"),
            },
        }
        if let Some(s) = step.as_mut() {
            match s.run(clock.now()).await {
                Ok(ids) => {
                    for _ in &ids {
                        metrics.batch("confirmed");
                    }
                    if !ids.is_empty() {
                        tracing::info!(batches = ?ids, "settlement batches confirmed");
                    }
                }
                Err(e) => {
                    let parked = matches!(e, StepError::Queue(QueueError::Parked { .. }));
                    metrics.batch(if parked { "parked" } else { "retrying" });
                    tracing::warn!(error = %e, "settlement step stopped; it will try again");
                }
            }
        }
        if let Some(c) = incentives {
            if let Err(e) = rewards_step.run(&*chain, &db, &wallet, c.rewards, &custody).await {
                tracing::warn!(error = %e, "reward epochs on chain: will try again");
            }
            if let Err(e) = slashing_step
                .run(&*chain, &db, &wallet, c.gateways, &custody, clock.now())
                .await
            {
                tracing::warn!(error = %e, "gateways and slashing on chain: will try again");
            }
            if let Err(e) = governance_step
                .run(&*chain, &db, &market, c.governance.parameters)
                .await
            {
                tracing::warn!(error = %e, "reading the governed parameters: will try again");
            }
            if let Err(e) = governance_step
                .follow_proposals(&*chain, &db, &wallet, c.governance, &custody, clock.now())
                .await
            {
                tracing::warn!(error = %e, "following proposals on chain: will try again");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// True when `path` holds a deployment (for tests and tools).
pub fn deployed(data_dir: &Path) -> bool {
    data_dir.join("deployment.json").exists()
}
