//! Bindings to the contracts in `contracts/`, generated from the ABI and bytecode that forge
//! built (`contracts/artifacts/*.json`, checked in; `contracts/test.sh` fails when they are
//! stale). The same bytecode is deployed on anvil, on any JSON-RPC node and in the in-process
//! EVM.
#![allow(missing_docs, missing_debug_implementations, clippy::too_many_arguments)]

alloy::sol!(
    #[derive(Debug, PartialEq, Eq)]
    EnergySettlementVault,
    "../contracts/artifacts/EnergySettlementVault.json"
);
alloy::sol!(
    #[derive(Debug, PartialEq, Eq)]
    SettlementToken,
    "../contracts/artifacts/SettlementToken.json"
);
alloy::sol!(
    #[derive(Debug, PartialEq, Eq)]
    GatewayRegistry,
    "../contracts/artifacts/GatewayRegistry.json"
);
alloy::sol!(
    #[derive(Debug, PartialEq, Eq)]
    RewardToken,
    "../contracts/artifacts/RewardToken.json"
);
alloy::sol!(
    #[derive(Debug, PartialEq, Eq)]
    RewardDistributor,
    "../contracts/artifacts/RewardDistributor.json"
);
alloy::sol!(
    #[derive(Debug, PartialEq, Eq)]
    GatewayStaking,
    "../contracts/artifacts/GatewayStaking.json"
);
alloy::sol!(
    #[derive(Debug, PartialEq, Eq)]
    GridParameters,
    "../contracts/artifacts/GridParameters.json"
);
alloy::sol!(
    #[derive(Debug, PartialEq, Eq)]
    GridGovernor,
    "../contracts/artifacts/GridGovernor.json"
);
alloy::sol!(
    #[derive(Debug, PartialEq, Eq)]
    TimelockController,
    "../contracts/artifacts/TimelockController.json"
);
alloy::sol!(
    #[derive(Debug, PartialEq, Eq)]
    RewardRedeemer,
    "../contracts/artifacts/RewardRedeemer.json"
);
