// SPDX-License-Identifier: MIT OR Apache-2.0
// One pool's payouts in one ERC-20 token. The pool funds it by transferring the token to this contract's
// address; its payer key pays each payout once, by the pool-assigned sequence number that the pool's
// signed Payout statement binds; the owner takes back what it no longer wants to hold. See README.md.
pragma solidity 0.8.37;

interface IERC20 {
    function transfer(address to, uint256 amount) external returns (bool);
}

contract Payouts {
    /// The token every payout is made in.
    IERC20 public immutable token;
    /// The pool's operator: the only one who may withdraw.
    address public immutable owner;
    /// The pool's hot key: the only one who may pay.
    address public immutable payer;

    /// One bit per payout sequence number, 256 to a storage word: a payout to a holder then costs a
    /// fraction of a fresh slot instead of one 20k-gas slot per 32-byte content id.
    mapping(uint256 => uint256) private paidBits;

    event Paid(uint256 indexed id, address indexed to, uint256 amount);
    event Skipped(uint256 indexed id);
    event Withdrawn(address indexed to, uint256 amount);

    error NotPayer();
    error NotOwner();
    error AlreadyPaid(uint256 id);
    error LengthMismatch();
    error TransferFailed(address to, uint256 amount);

    constructor(IERC20 token_, address payer_) {
        token = token_;
        owner = msg.sender;
        payer = payer_;
    }

    function paid(uint256 id) external view returns (bool) {
        return paidBits[id >> 8] & (1 << (id & 0xff)) != 0;
    }

    /// Pays one payout; reverts if it was already paid, so a resent transaction can never pay twice.
    function pay(uint256 id, address to, uint256 amount) external {
        if (msg.sender != payer) revert NotPayer();
        if (!markPaid(id)) revert AlreadyPaid(id);
        transferOut(to, amount);
        emit Paid(id, to, amount);
    }

    /// Pays many payouts in one transaction. An id already paid is skipped (and logged), so a batch that
    /// overlaps one already mined still pays the rest; any failing transfer reverts the whole batch.
    function payBatch(uint256[] calldata ids, address[] calldata to, uint256[] calldata amounts) external {
        if (msg.sender != payer) revert NotPayer();
        uint256 n = ids.length;
        if (to.length != n || amounts.length != n) revert LengthMismatch();
        for (uint256 i; i < n; ++i) {
            uint256 id = ids[i];
            if (!markPaid(id)) {
                emit Skipped(id);
                continue;
            }
            transferOut(to[i], amounts[i]);
            emit Paid(id, to[i], amounts[i]);
        }
    }

    function withdraw(address to, uint256 amount) external {
        if (msg.sender != owner) revert NotOwner();
        transferOut(to, amount);
        emit Withdrawn(to, amount);
    }

    /// Sets the id's bit; false when it was set already.
    function markPaid(uint256 id) private returns (bool) {
        uint256 word = paidBits[id >> 8];
        uint256 bit = 1 << (id & 0xff);
        if (word & bit != 0) return false;
        paidBits[id >> 8] = word | bit;
        return true;
    }

    /// A token transfer that reverts unless the token accepted it: a revert, a false, or (for a token
    /// that returns nothing) an address without code all count as failure.
    function transferOut(address to, uint256 amount) private {
        (bool ok, bytes memory ret) = address(token).call(abi.encodeCall(IERC20.transfer, (to, amount)));
        if (!ok || (ret.length == 0 ? address(token).code.length == 0 : !abi.decode(ret, (bool)))) {
            revert TransferFailed(to, amount);
        }
    }
}
