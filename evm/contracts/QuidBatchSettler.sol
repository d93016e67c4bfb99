// SPDX-License-Identifier: UNLICENSED
pragma solidity ^0.8.24;

/// @notice The one EIP-3009 function the settler calls: USDC's (v, r, s) form, selector 0xe3ee160e.
interface IEIP3009 {
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;
}

/// @title QuidBatchSettler: many EIP-3009 authorizations of one token in one transaction.
/// @notice A facilitator's relayer sends settle(token, perItemGas, items); the settler calls
/// token.transferWithAuthorization once per item, in order, and emits Failed for each item whose
/// call reverted or was not attempted. One failing authorization never reverts the others.
///
/// An item without a Failed event was called and returned without reverting. The settler logs
/// nothing for it: the proof of payment is the token's own logs from that call, which EIP-3009
/// tokens emit in this order: AuthorizationUsed(from, nonce), then Transfer(from, to, value).
/// Those logs sit in the receipt between the previous item's logs and the next item's, so an
/// item's outcome is read from its place in the receipt (see DecodeBatchResults in evm/batch.go).
/// An event of the settler's own for such items would only repeat what the token logged, at
/// about 2,100 gas a payment.
///
/// What it is not: it has no owner, no storage, no payable function and no way to move tokens
/// of its own. transferWithAuthorization moves value from `from` to `to` directly; the settler
/// is only the caller, and anyone may call it (EIP-3009 lets anyone submit an authorization).
///
/// Security notes.
/// - Funds cannot be redirected. Every argument of the token call is what the payer signed: the
///   token recovers the signer over (from, to, value, validAfter, validBefore, nonce), so a
///   changed `to` or `value` is an invalid signature and that item fails. A payer who signed
///   `to` = this contract would strand the value here; facilitators only settle authorizations
///   whose `to` is the seller's payTo.
/// - Re-entrancy cannot hurt: there is no state to corrupt and no balance to drain. A token that
///   called back into settle would only run another batch, inside the gas of its own item, and
///   mix that batch's Failed events into this one's logs. That forges nothing a hostile token
///   could not already log itself: a receipt proves payments in a token only as far as the token
///   is trusted, batched or not. Facilitators settle only tokens they trust.
/// - A hostile or broken token can waste at most perItemGas per item: each call gets exactly
///   {gas: perItemGas}, and at most MAX_REASON_BYTES of its revert data are copied and logged,
///   so a huge revert payload cannot blow up the batch's memory or log cost.
/// - An item is only attempted when the call is sure to receive its full perItemGas (the 63/64
///   rule of EIP-150 included) and enough gas remains to report it and every later item. So a
///   Failed reason is the token's verdict on the authorization, not an artifact of a gas limit
///   set too low by the relayer; items that do not fit are reported Failed(NotAttempted()) and
///   their authorizations stay unused. eth_estimateGas finds the smallest limit that does not
///   revert, which here is one that skips items: compute the gas limit instead (see evm/batch.go).
/// - A call that returned is not proof of payment, and the settler checks no balances, by design:
///   the facilitator verifies, off-chain and per item, the token's AuthorizationUsed(from, nonce)
///   log directly followed by its Transfer(from, to, value) log at the item's place in the
///   receipt (a non-reverting token that moved nothing would otherwise pass). A Failed item's call
///   reverted, so it changed nothing and left no logs.
/// @dev Written for quid. Tests in evm/batch_test.go run it against QuidToken on the devnet.
contract QuidBatchSettler {
    /// @notice One signed EIP-3009 TransferWithAuthorization. The nine fields are the nine
    /// arguments of transferWithAuthorization, in order, so each item's ABI encoding is already
    /// the body of the token call and is copied into it unchanged.
    struct Authorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
        uint8 v;
        bytes32 r;
        bytes32 s;
    }

    /// @notice The token call for (from, nonce) reverted, or was not attempted; reason is the
    /// first MAX_REASON_BYTES bytes of its revert data (often Error(string)), or NotAttempted().
    event Failed(address indexed token, address indexed from, bytes32 indexed nonce, bytes reason);

    /// @notice The reason of an item skipped because the transaction's remaining gas could not
    /// give its call perItemGas. The authorization is untouched and may be settled again.
    error NotAttempted();

    /// @notice At most this many bytes of a failed call's revert data are logged.
    uint256 public constant MAX_REASON_BYTES = 256;
    /// @notice Gas kept back, beyond perItemGas and the 1/64 the EVM withholds from a call, for
    /// the work around one call: copying the item, the call's own cost and reporting its outcome.
    uint256 public constant ITEM_OVERHEAD_GAS = 10_000;
    /// @notice Gas kept back for reporting each later item, should it have to be skipped.
    uint256 public constant REPORT_GAS = 5_000;

    /// @notice Settles items with token, calling transferWithAuthorization with at most
    /// perItemGas gas for each, in order, and emits Failed, right after its turn, for each item
    /// that reverted or was not attempted.
    /// @dev Reverts only if token has no code (a call to an account without code would return
    /// for every item) or if the calldata is malformed.
    function settle(address token, uint64 perItemGas, Authorization[] calldata items) external {
        require(token.code.length != 0, "QuidBatchSettler: token has no code");
        // One buffer for every revert reason, so memory does not grow with the number of failures.
        bytes memory reason = new bytes(MAX_REASON_BYTES);
        bytes memory notAttempted = abi.encodeWithSelector(NotAttempted.selector);
        uint256 callGas = uint256(perItemGas) + perItemGas / 63 + ITEM_OVERHEAD_GAS;
        uint256 n = items.length;
        for (uint256 i; i < n; ++i) {
            Authorization calldata a = items[i];
            if (gasleft() < callGas + (n - 1 - i) * REPORT_GAS) {
                emit Failed(token, a.from, a.nonce, notAttempted);
            } else if (!_transferWithAuthorization(token, perItemGas, a)) {
                _copyRevertData(reason);
                emit Failed(token, a.from, a.nonce, reason);
            }
        }
    }

    /// @dev Calls token.transferWithAuthorization(a...) with exactly perItemGas gas and reports
    /// whether it returned without reverting. The call is assembled by hand, the selector then the
    /// item's nine words copied straight from calldata: Solidity's try/catch would decode and
    /// re-encode every field and check the token's code size on every call, which cost about 800
    /// gas per item, a fifth of what the settler adds to each payment. The call reads no return
    /// data: the (v, r, s) function returns nothing.
    function _transferWithAuthorization(address token, uint256 perItemGas, Authorization calldata a)
        private
        returns (bool ok)
    {
        bytes4 selector = IEIP3009.transferWithAuthorization.selector;
        assembly ("memory-safe") {
            let m := mload(0x40) // scratch space past the free memory pointer, not kept
            mstore(m, selector)
            calldatacopy(add(m, 4), a, 288) // 9 words
            ok := call(perItemGas, token, 0, m, 292, 0, 0)
        }
    }

    /// @dev Copies the first MAX_REASON_BYTES bytes of the last call's revert data into buf,
    /// which has room for MAX_REASON_BYTES, and sets buf's length to what was copied.
    function _copyRevertData(bytes memory buf) private pure {
        assembly ("memory-safe") {
            let size := returndatasize()
            if gt(size, MAX_REASON_BYTES) { size := MAX_REASON_BYTES }
            mstore(buf, size)
            returndatacopy(add(buf, 32), 0, size)
        }
    }
}
