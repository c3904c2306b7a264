// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// Prints through forge's console address (shown by `forge test -vv`), for the gas reports.
library Console {
    address internal constant CONSOLE = address(0x000000000000000000636F6e736F6c652e6c6f67);

    function log(string memory label, uint256 value) internal view {
        (bool ok,) = CONSOLE.staticcall(abi.encodeWithSignature("log(string,uint256)", label, value));
        ok;
    }
}
