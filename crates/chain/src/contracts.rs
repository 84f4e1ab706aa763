//! Bindings for `contracts/Payouts.sol` and the test token, generated from the committed artifacts (ABI
//! and creation bytecode). `Payouts::deploy` deploys exactly the bytes that `contracts/compile.js`
//! produced and the artifact test checks.

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    Payouts,
    "../../contracts/artifacts/Payouts.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    TestToken,
    "../../contracts/artifacts/TestToken.json"
);
