// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase} from "./TestBase.sol";
import {GridParameters, IBondRules} from "../../src/GridParameters.sol";

/// The cheat code the permit tests need (kept out of TestBase to leave it untouched).
interface VmSign {
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
}

/// Default parameter values and bounds for the governance tests, and a gas meter.
abstract contract GridFixture is TestBase {
    VmSign internal constant vmSign = VmSign(address(uint160(uint256(keccak256("hevm cheat code")))));

    struct Tx {
        uint256 execution;
        uint256 total;
    }

    function _initial() internal pure returns (GridParameters.Params memory p) {
        p.feePerHop = 10_000; // 0.01 per kWh per hop
        p.networkFee = 20_000;
        p.importTariff = 300_000;
        p.exportTariff = 80_000;
        p.rewardGeneration = 1_000_000; // 1 GSR per kWh
        p.rewardDemandResponse = 2_000_000;
        p.rewardUptime = 5_000_000;
        p.epochInitialBudget = 10_000e6;
        p.halvingEpochs = 4;
        p.uptimeThresholdBps = 9_000;
        p.minBond = 100e6;
        p.unbondingCooldown = 7 days;
        p.slashBurnBps = 5_000;
        p.slashReporterBps = 1_000;
        p.redemptionRate = 100_000; // 0.1 currency unit per GSR
        p.redemptionBudget = 1_000e6;
    }

    function _minimum() internal pure returns (GridParameters.Params memory p) {
        p.halvingEpochs = 1;
        p.uptimeThresholdBps = 5_000;
        p.unbondingCooldown = 1 hours;
        p.redemptionRate = 1_000;
    }

    function _maximum() internal pure returns (GridParameters.Params memory p) {
        p.feePerHop = 100_000;
        p.networkFee = 200_000;
        p.importTariff = 2_000_000;
        p.exportTariff = 2_000_000;
        p.rewardGeneration = 10_000_000;
        p.rewardDemandResponse = 20_000_000;
        p.rewardUptime = 50_000_000;
        p.epochInitialBudget = 1_000_000e6;
        p.halvingEpochs = 1_000;
        p.uptimeThresholdBps = 10_000;
        p.minBond = 100_000e6;
        p.unbondingCooldown = 90 days;
        p.slashBurnBps = 10_000;
        p.slashReporterBps = 5_000;
        p.redemptionRate = 1_000_000;
        p.redemptionBudget = 100_000e6;
    }

    function _deployParameters(address owner) internal returns (GridParameters) {
        return new GridParameters(owner, IBondRules(address(0)), _initial(), _minimum(), _maximum());
    }

    /// 21,000 + calldata + execution; calldata priced the standard way (4 per zero byte, 16 per
    /// other byte) unless the EIP-7623 floor is higher (as in RewardGas.t.sol).
    function _tx(bytes memory data, uint256 execution) internal pure returns (Tx memory t) {
        uint256 zeros;
        for (uint256 i = 0; i < data.length; ++i) {
            if (data[i] == 0) ++zeros;
        }
        uint256 tokens = zeros + 4 * (data.length - zeros);
        uint256 standard = 21_000 + 4 * tokens + execution;
        uint256 floor = 21_000 + 10 * tokens;
        t.execution = execution;
        t.total = standard > floor ? standard : floor;
    }

    /// The gas of one call, measured around the CALL alone; bubbles a revert.
    function _measure(address target, bytes memory data) internal returns (uint256 used) {
        bool ok;
        assembly ("memory-safe") {
            let before := gas()
            ok := call(gas(), target, 0, add(data, 0x20), mload(data), 0, 0)
            used := sub(before, gas())
            if iszero(ok) {
                let p := mload(0x40)
                returndatacopy(p, 0, returndatasize())
                revert(p, returndatasize())
            }
        }
    }
}
