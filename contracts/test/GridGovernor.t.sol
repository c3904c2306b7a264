// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {GridFixture} from "./utils/GridFixture.sol";
import {Console} from "./utils/Console.sol";
import {RewardToken} from "../src/RewardToken.sol";
import {GridParameters} from "../src/GridParameters.sol";
import {GridGovernor} from "../src/GridGovernor.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// The whole path of a parameter change: propose, vote, queue, execute through the timelock.
/// Gas of each step is printed by `forge test --match-contract GridGovernorTest -vv`.
contract GridGovernorTest is GridFixture {
    RewardToken internal token;
    GridParameters internal params;
    TimelockController internal timelock;
    GridGovernor internal governor;

    address internal admin = address(0xAD);
    address internal alice = address(0xA1);
    address internal bob = address(0xB0);
    address internal carol = address(0xC0);

    uint48 internal constant VOTING_DELAY = 1 days;
    uint32 internal constant VOTING_PERIOD = 5 days;
    uint256 internal constant TIMELOCK_DELAY = 2 days;
    uint256 internal constant THRESHOLD = 1_000e6;
    uint256 internal constant QUORUM_PERCENT = 4;

    event ParameterChanged(bytes32 indexed key, uint256 previous, uint256 current, uint64 at);

    function setUp() public {
        vm.warp(1_700_000_000);
        token = new RewardToken(admin, 1_000_000_000e6);
        address[] memory none = new address[](0);
        address[] memory anyone = new address[](1); // address(0): anyone may execute
        timelock = new TimelockController(TIMELOCK_DELAY, none, anyone, address(this));
        governor = new GridGovernor(token, timelock, VOTING_DELAY, VOTING_PERIOD, THRESHOLD, QUORUM_PERCENT);
        timelock.grantRole(timelock.PROPOSER_ROLE(), address(governor));
        timelock.grantRole(timelock.CANCELLER_ROLE(), address(governor));
        timelock.renounceRole(timelock.DEFAULT_ADMIN_ROLE(), address(this));
        params = _deployParameters(address(timelock));

        vm.startPrank(admin);
        token.grantRole(token.MINTER_ROLE(), admin);
        token.mint(alice, 60_000e6);
        token.mint(bob, 30_000e6);
        token.mint(carol, 910_000e6); // never delegates: her tokens do not vote
        vm.stopPrank();
        vm.prank(alice);
        token.delegate(alice);
        vm.prank(bob);
        token.delegate(bob);
        vm.warp(block.timestamp + 1);
    }

    function _proposal(uint256 value)
        internal
        view
        returns (address[] memory targets, uint256[] memory values, bytes[] memory calldatas)
    {
        targets = new address[](1);
        values = new uint256[](1);
        calldatas = new bytes[](1);
        targets[0] = address(params);
        calldatas[0] = abi.encodeCall(GridParameters.set, (params.FEE_PER_HOP(), value));
    }

    function _cool() internal {
        vm.cool(address(governor));
        vm.cool(address(timelock));
        vm.cool(address(token));
        vm.cool(address(params));
    }

    /// Propose (alice), vote (alice and bob for), queue, execute; returns the proposal id.
    /// Logs gas when `label` is non-empty.
    function _pass(uint256 value, string memory description, bool log) internal returns (uint256 id) {
        (address[] memory targets, uint256[] memory values, bytes[] memory calldatas) = _proposal(value);
        bytes32 descriptionHash = keccak256(bytes(description));
        id = governor.hashProposal(targets, values, calldatas, descriptionHash);

        bytes memory data = abi.encodeCall(IGovernor.propose, (targets, values, calldatas, description));
        _cool();
        vm.prank(alice);
        Tx memory propose = _tx(data, _measure(address(governor), data));
        assertEq(uint256(governor.state(id)), uint256(IGovernor.ProposalState.Pending), "pending");

        vm.warp(block.timestamp + VOTING_DELAY + 1);
        assertEq(uint256(governor.state(id)), uint256(IGovernor.ProposalState.Active), "active");
        data = abi.encodeCall(IGovernor.castVote, (id, uint8(1)));
        _cool();
        vm.prank(alice);
        Tx memory vote = _tx(data, _measure(address(governor), data));
        vm.prank(bob);
        governor.castVote(id, 1);

        vm.warp(block.timestamp + VOTING_PERIOD);
        assertEq(uint256(governor.state(id)), uint256(IGovernor.ProposalState.Succeeded), "succeeded");
        data = abi.encodeCall(IGovernor.queue, (targets, values, calldatas, descriptionHash));
        _cool();
        Tx memory queue = _tx(data, _measure(address(governor), data));
        assertEq(uint256(governor.state(id)), uint256(IGovernor.ProposalState.Queued), "queued");

        // Not before the timelock delay.
        vm.expectRevert();
        governor.execute(targets, values, calldatas, descriptionHash);
        vm.warp(block.timestamp + TIMELOCK_DELAY);
        if (log) {
            data = abi.encodeCall(IGovernor.execute, (targets, values, calldatas, descriptionHash));
            vm.expectEmit(address(params));
            emit ParameterChanged(params.FEE_PER_HOP(), 10_000, value, uint64(block.timestamp));
            _cool();
            Tx memory execute = _tx(data, _measure(address(governor), data));
            Console.log("governance: propose tx gas", propose.total);
            Console.log("governance: castVote tx gas", vote.total);
            Console.log("governance: queue tx gas", queue.total);
            Console.log("governance: execute tx gas (one GridParameters.set)", execute.total);
            Console.log("governance: execute execution gas", execute.execution);
        }
    }

    function test_Setup() public view {
        assertEq(governor.votingDelay(), VOTING_DELAY, "voting delay");
        assertEq(governor.votingPeriod(), VOTING_PERIOD, "voting period");
        assertEq(governor.proposalThreshold(), THRESHOLD, "threshold");
        assertEq(timelock.getMinDelay(), TIMELOCK_DELAY, "timelock delay");
        assertEq(governor.timelock(), address(timelock), "timelock");
        assertTrue(keccak256(bytes(governor.CLOCK_MODE())) == keccak256("mode=timestamp"), "clock mode");
        assertEq(uint256(governor.clock()), block.timestamp, "clock");
        // Quorum: 4% of the whole supply (delegated or not) at the timepoint.
        assertEq(governor.quorum(block.timestamp - 1), 40_000e6, "quorum");
        assertTrue(timelock.hasRole(timelock.EXECUTOR_ROLE(), address(0)), "open executor");
        assertTrue(!timelock.hasRole(timelock.DEFAULT_ADMIN_ROLE(), address(this)), "no admin left");
    }

    function test_ProposeVoteQueueExecute() public {
        _pass(12_000, "fee per hop: 0.012 per kWh", true);
        assertEq(params.get(params.FEE_PER_HOP()), 12_000, "changed");
        assertEq(params.current().feePerHop, 12_000, "current()");
        assertEq(uint256(params.version()), 1, "version");
    }

    /// A homeowner without ether votes: the service relays the ballot the home's account signed
    /// (`castVoteBySig`), counted as the home's vote, once.
    function test_CastVoteBySigCountsOnceForTheSigner() public {
        uint256 homeKey = 0x40e;
        address home = vm.addr(homeKey);
        vm.prank(admin);
        token.mint(home, 20_000e6);
        vm.prank(home);
        token.delegate(home);
        vm.warp(block.timestamp + 1);
        (address[] memory targets, uint256[] memory values, bytes[] memory calldatas) = _proposal(11_000);
        vm.prank(alice);
        uint256 id = governor.propose(targets, values, calldatas, "fee per hop: 0.011 per kWh");
        vm.warp(block.timestamp + VOTING_DELAY + 1);

        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256(bytes(governor.name())),
                keccak256(bytes(governor.version())),
                block.chainid,
                address(governor)
            )
        );
        bytes32 ballot = keccak256(abi.encode(governor.BALLOT_TYPEHASH(), id, uint8(1), home, governor.nonces(home)));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(homeKey, keccak256(abi.encodePacked("\x19\x01", domain, ballot)));
        bytes memory data = abi.encodeCall(IGovernor.castVoteBySig, (id, uint8(1), home, abi.encodePacked(r, s, v)));
        _cool();
        vm.prank(address(0x5e7)); // the service relays it
        Tx memory vote = _tx(data, _measure(address(governor), data));
        assertTrue(governor.hasVoted(id, home), "counted as the home's vote");
        (, uint256 forVotes,) = governor.proposalVotes(id);
        assertEq(forVotes, 20_000e6, "with the home's votes");
        // the same ballot again: its nonce is used
        (bool ok,) = address(governor).call(data);
        assertTrue(!ok, "a replayed ballot is refused");
        Console.log("governance: castVoteBySig tx gas (relayed ballot)", vote.total);
    }

    function test_OutOfBoundsFailsAtExecuteAndChangesNothing() public {
        uint256 tooHigh = 100_001;
        uint256 id = _pass(tooHigh, "fee per hop: too high", false);
        (address[] memory targets, uint256[] memory values, bytes[] memory calldatas) = _proposal(tooHigh);
        vm.expectRevert(
            abi.encodeWithSelector(GridParameters.OutOfBounds.selector, params.FEE_PER_HOP(), tooHigh, 0, 100_000)
        );
        governor.execute(targets, values, calldatas, keccak256("fee per hop: too high"));
        assertEq(params.get(params.FEE_PER_HOP()), 10_000, "unchanged");
        assertEq(uint256(params.version()), 0, "version unchanged");
        assertEq(uint256(governor.state(id)), uint256(IGovernor.ProposalState.Queued), "still queued");
    }

    function test_OnlyTheTimelockSets() public {
        bytes32 key = params.FEE_PER_HOP();
        address[3] memory callers = [alice, address(governor), admin];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.prank(callers[i]);
            vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, callers[i]));
            params.set(key, 12_000);
        }
        // Nor can anyone schedule on the timelock but the governor.
        vm.prank(alice);
        vm.expectRevert();
        timelock.schedule(address(params), 0, abi.encodeCall(GridParameters.set, (key, 12_000)), 0, 0, TIMELOCK_DELAY);
    }

    function test_DefeatedWithoutQuorum() public {
        (address[] memory targets, uint256[] memory values, bytes[] memory calldatas) = _proposal(12_000);
        vm.prank(alice);
        uint256 id = governor.propose(targets, values, calldatas, "low turnout");
        vm.warp(block.timestamp + VOTING_DELAY + 1);
        vm.prank(bob); // 30,000 GSR < 4% of 1,000,000
        governor.castVote(id, 1);
        vm.warp(block.timestamp + VOTING_PERIOD);
        assertEq(uint256(governor.state(id)), uint256(IGovernor.ProposalState.Defeated), "defeated");
    }

    function test_UndelegatedCannotPropose() public {
        (address[] memory targets, uint256[] memory values, bytes[] memory calldatas) = _proposal(12_000);
        vm.prank(carol);
        vm.expectRevert(
            abi.encodeWithSelector(IGovernor.GovernorInsufficientProposerVotes.selector, carol, 0, THRESHOLD)
        );
        governor.propose(targets, values, calldatas, "carol");
    }
}
