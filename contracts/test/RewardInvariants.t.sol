// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase, Vm} from "./utils/TestBase.sol";
import {RewardTree} from "./utils/RewardTree.sol";
import {RewardToken} from "../src/RewardToken.sol";
import {RewardDistributor} from "../src/RewardDistributor.sol";
import {GatewayRegistry} from "../src/GatewayRegistry.sol";
import {GatewayStaking} from "../src/GatewayStaking.sol";
import {StakingHarness} from "./GatewayStaking.t.sol";
import {ERC20Capped} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Capped.sol";

/// Drives the incentive layer at random: epochs posted (some over budget, some replayed or out
/// of order), single and batched claims (some with inflated amounts), the homes bonding their
/// rewards for gateways, unbonding, withdrawing (some too early), slashing, time passing.
contract RewardHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 internal constant HOMES = 6;

    RewardToken public immutable token;
    RewardDistributor public immutable dist;
    StakingHarness public immutable staking;
    address[] public homes;
    address[] public gateways;

    /// Each home's cumulative total in the latest posted root (the ghost of the tree).
    uint256[HOMES] public cumulative;
    uint256[HOMES] internal pending;
    mapping(uint64 epoch => bytes32) public postedRoot;
    uint64 public epochsPosted;
    uint256 public replaysAccepted;
    uint256 public overBudgetAccepted;
    uint256 public inflatedClaimsPaid;
    uint256 public earlyWithdrawals;
    /// Coverage counters: what the random runs actually did (each is reached in the default
    /// 64 runs; checked by hand when the handler was written).
    uint256 public capRefusals;
    uint256 public claimsPaid;
    uint256 public bondsMade;
    uint256 public withdrawals;

    constructor(RewardToken token_, RewardDistributor dist_, StakingHarness staking_, address[] memory gateways_) {
        token = token_;
        dist = dist_;
        staking = staking_;
        gateways = gateways_;
        for (uint256 i = 0; i < HOMES; ++i) {
            // Ascending addresses: the tree order.
            // forge-lint: disable-next-line(unsafe-typecast)
            address home = address(uint160(0xC000 + i));
            homes.push(home);
            vm.prank(home);
            token.approve(address(staking_), type(uint256).max);
        }
    }

    function homeCount() external pure returns (uint256) {
        return HOMES;
    }

    function _levels(uint256[HOMES] memory cum) internal view returns (bytes32[][] memory) {
        bytes32[] memory leaves = new bytes32[](HOMES);
        for (uint256 i = 0; i < HOMES; ++i) {
            leaves[i] = RewardTree.leaf(homes[i], cum[i]);
        }
        return RewardTree.build(leaves);
    }

    /// Post the next epoch with random new rewards within (or, when `over`, just past) its budget.
    function postEpoch(uint256 seed, bool over) external {
        uint64 epoch = epochsPosted + 1;
        uint256 budget = dist.epochBudget(epoch);
        uint256[HOMES] memory next = cumulative;
        uint256 total;
        uint256 added;
        for (uint256 i = 0; i < HOMES; ++i) {
            uint256 add = uint256(keccak256(abi.encode(seed, i))) % (budget / HOMES + 1);
            next[i] += add;
            added += add;
            total += next[i];
        }
        if (over) total += budget - added + 1;
        bytes32 root = RewardTree.root(_levels(next));
        try dist.postEpoch(epoch, root, keccak256(abi.encode(seed)), total) {
            if (over) overBudgetAccepted++;
            epochsPosted = epoch;
            postedRoot[epoch] = root;
            // Over budget is refused, so `next` is the tree only when not `over`.
            cumulative = next;
        } catch (bytes memory reason) {
            if (bytes4(reason) == ERC20Capped.ERC20ExceededCap.selector) capRefusals++;
        }
    }

    /// Post an old epoch again (or an epoch from the future): must always be refused.
    function replayEpoch(uint64 which, bytes32 root) external {
        uint64 epoch = which % (epochsPosted + 3);
        if (epoch == epochsPosted + 1) epoch += 1;
        try dist.postEpoch(epoch, root, bytes32(0), dist.cumulativeTotal()) {
            replaysAccepted++;
        } catch {}
    }

    function claim(uint256 who) external {
        uint256 i = who % HOMES;
        if (epochsPosted == 0) return;
        try dist.claim(homes[i], cumulative[i], RewardTree.proof(_levels(cumulative), i)) {
            claimsPaid++;
        } catch {}
    }

    /// A claim for more than the cumulative total, with the genuine proof.
    function claimInflated(uint256 who, uint256 extra) external {
        uint256 i = who % HOMES;
        if (epochsPosted == 0) return;
        try dist.claim(homes[i], cumulative[i] + extra % 1e9 + 1, RewardTree.proof(_levels(cumulative), i)) {
            inflatedClaimsPaid++;
        } catch {}
    }

    function claimMany(uint256 bits) external {
        if (epochsPosted == 0) return;
        uint256 k;
        for (uint256 i = 0; i < HOMES; ++i) {
            if ((bits >> i) & 1 == 1) pending[k++] = i;
        }
        if (k == 0) return;
        uint256[] memory positions = new uint256[](k);
        address[] memory a = new address[](k);
        uint256[] memory c = new uint256[](k);
        for (uint256 j = 0; j < k; ++j) {
            positions[j] = pending[j];
            a[j] = homes[pending[j]];
            c[j] = cumulative[pending[j]];
        }
        (bytes32[] memory proof, bool[] memory flags) = RewardTree.multiproof(_levels(cumulative), positions);
        if (dist.claimMany(a, c, proof, flags) != 0) claimsPaid++;
    }

    function bond(uint256 who, uint256 gw, uint256 amount) external {
        address home = homes[who % HOMES];
        uint256 balance = token.balanceOf(home);
        if (balance == 0) return;
        vm.prank(home);
        try staking.bond(gateways[gw % gateways.length], amount % balance + 1) {
            bondsMade++;
        } catch {}
    }

    function requestUnbond(uint256 who, uint256 gw, uint256 amount) external {
        address home = homes[who % HOMES];
        address gateway = gateways[gw % gateways.length];
        (uint256 active,,) = staking.bondOf(gateway, home);
        if (active == 0) return;
        vm.prank(home);
        staking.requestUnbond(gateway, amount % active + 1);
    }

    function withdraw(uint256 who, uint256 gw) external {
        address home = homes[who % HOMES];
        address gateway = gateways[gw % gateways.length];
        (,, uint64 unlockAt) = staking.bondOf(gateway, home);
        vm.prank(home);
        try staking.withdraw(gateway) {
            withdrawals++;
            if (block.timestamp < unlockAt) earlyWithdrawals++;
        } catch {}
    }

    function slash(uint256 gw, uint256 bps) external {
        staking.slash(gateways[gw % gateways.length], bps % 3_000);
    }

    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + seconds_ % 2 days);
    }
}

contract RewardInvariantTest is TestBase {
    RewardToken internal token;
    RewardDistributor internal dist;
    GatewayRegistry internal registry;
    StakingHarness internal staking;
    RewardHandler internal handler;
    address[] internal gateways;
    uint256 internal constant BUDGET = 6_000e6;
    /// Below the schedule's total (about 2 x 3 x BUDGET), so the cap is reached in long runs.
    uint256 internal constant CAP = 2 * BUDGET;

    function setUp() public {
        vm.warp(1_800_000_000);
        address admin = address(0xAD);
        token = new RewardToken(admin, CAP);
        dist = new RewardDistributor(token, admin, BUDGET, 3);
        registry = new GatewayRegistry(admin);
        staking = new StakingHarness(token, registry, admin, 10e6, 1 days);
        vm.startPrank(admin);
        token.grantRole(token.MINTER_ROLE(), address(dist));
        registry.grantRole(registry.INSTALLER_ROLE(), admin);
        for (uint256 i = 0; i < 3; ++i) {
            // forge-lint: disable-next-line(unsafe-typecast)
            address gw = address(uint160(0x6000 + i));
            registry.commission(gw, address(0x0E), bytes32(i));
            gateways.push(gw);
        }
        vm.stopPrank();
        handler = new RewardHandler(token, dist, staking, gateways);
        vm.startPrank(admin);
        dist.grantRole(dist.POSTER_ROLE(), address(handler));
        vm.stopPrank();
        targetContract(address(handler));
    }

    function invariant_SupplyWithinCap() public view {
        assertLe(token.totalSupply(), token.cap(), "total supply <= cap");
        assertEq(token.totalSupply(), dist.cumulativeTotal(), "all supply minted by epochs");
        assertEq(handler.overBudgetAccepted(), 0, "an epoch over its budget was accepted");
    }

    /// Claims never pay more than was minted to the distributor, nor an account more than its
    /// cumulative total.
    function invariant_ClaimedWithinMinted() public view {
        uint256 claimedSum;
        for (uint256 i = 0; i < handler.homeCount(); ++i) {
            address home = handler.homes(i);
            uint256 c = dist.claimed(home);
            assertLe(c, handler.cumulative(i), "claimed <= cumulative");
            claimedSum += c;
        }
        assertLe(claimedSum, dist.cumulativeTotal(), "sum claimed <= minted to the distributor");
        assertEq(claimedSum + token.balanceOf(address(dist)), dist.cumulativeTotal(), "claimed + held == minted");
        assertEq(handler.inflatedClaimsPaid(), 0, "a claim above the cumulative total paid");
    }

    /// Roots are posted once per epoch, in order, and never replaced.
    function invariant_RootsNeverGoBack() public view {
        uint64 last = dist.lastEpoch();
        assertEq(uint256(last), uint256(handler.epochsPosted()), "one epoch per accepted post");
        assertEq(handler.replaysAccepted(), 0, "an epoch was posted twice or out of order");
        for (uint64 e = 1; e <= last; ++e) {
            assertEq(dist.rootOf(e), handler.postedRoot(e), "root replaced");
        }
        assertEq(dist.rootOf(last + 1), bytes32(0), "no root ahead");
    }

    /// No bond leaves before its cool-down; the books match the tokens held.
    function invariant_BondsHeldUntilCooldown() public view {
        assertEq(handler.earlyWithdrawals(), 0, "withdrawn before the cool-down");
        uint256 pools;
        for (uint256 g = 0; g < gateways.length; ++g) {
            GatewayStaking.Pool memory p = staking.poolOf(gateways[g]);
            pools += p.active + p.unbonding;
            assertLe(p.active, p.activeShares, "a share worth more than a unit");
            assertLe(p.unbonding, p.unbondingShares, "a cooling share worth more than a unit");
            uint256 parts;
            uint256 cooling;
            for (uint256 i = 0; i < handler.homeCount(); ++i) {
                (uint256 a, uint256 u,) = staking.bondOf(gateways[g], handler.homes(i));
                parts += a;
                cooling += u;
            }
            assertLe(parts, p.active, "active parts <= active pool");
            assertLe(cooling, p.unbonding, "cooling parts <= cooling pool");
        }
        assertEq(token.balanceOf(address(staking)), pools + staking.slashedTotal(), "tokens held = pools + slashed");
    }
}
