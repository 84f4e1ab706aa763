//! The chain side of the command line: `idlegrid chain deploy`, `pool status` and `wallet`, and the
//! chain flags of `pool` and `provide`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use idlegrid::identity::{self, KeySlot, KeyStore, default_data_dir};
use idlegrid::ledger::Ledger;
use idlegrid::onchain::{PoolChain, parse_address};
use idlegrid::payout_address::{self, PayoutChoice};
use idlegrid::pool::chain::{ChainPolicy, ChainRail};
use idlegrid::pool::{Pool, PoolConfig, report};
use idlegrid::proof::{self, ProofBundle};
use idlegrid::statement::{AddressBinding, Signed, hex_address};
use idlegrid_chain::deploy::{DeployPlan, deploy};
use idlegrid_chain::payer::Payer;
use idlegrid_chain::{U256, account_signer, parse_key};
use serde::Serialize;

use super::network::{identity, write_atomically};

/// The pool's payer key when no `--chain-key-file` is given: kept like the identity.
const POOL_PAYER: KeySlot = KeySlot {
    what: "chain payer",
    file: "chain-payer.key",
    user: "chain-payer",
    generate: idlegrid_chain::new_account_key,
};

#[derive(Subcommand)]
pub enum ChainCommand {
    /// Deploy a pool's payouts contract (and, with --test-token, a test token funded into it), and
    /// write the chain file `idlegrid pool --chain` reads
    Deploy(DeployArgs),
}

#[derive(Args)]
pub struct DeployArgs {
    /// The chain's JSON-RPC URL
    #[arg(long, value_name = "URL")]
    rpc: String,
    /// A file holding the deployer's hex secp256k1 key (it owns the contract and may withdraw)
    #[arg(long, value_name = "FILE")]
    key_file: PathBuf,
    /// Deploy a mintable test token (6 decimals), mint to the deployer and deposit into the contract:
    /// for tests and demos only
    #[arg(long, conflicts_with = "token")]
    test_token: bool,
    /// The ERC-20 token to pay in
    #[arg(long, value_name = "ADDRESS", required_unless_present = "test_token")]
    token: Option<String>,
    /// The address that may pay (the pool's chain key); the deployer's own by default
    #[arg(long, value_name = "ADDRESS")]
    payer: Option<String>,
    /// Blocks a payout needs (its own included) before it counts as paid
    #[arg(long, value_name = "N", default_value_t = 2)]
    confirmations: u64,
    /// A block explorer's base URL, for links to transactions
    #[arg(long, value_name = "URL")]
    explorer: Option<String>,
    /// With --test-token: whole tokens to deposit into the contract
    #[arg(long, value_name = "TOKENS", default_value_t = 100_000)]
    test_deposit: u64,
    /// Where to write the chain file
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// `idlegrid pool`'s chain flags.
#[derive(Args, Clone, Default)]
pub struct PoolChainArgs {
    /// Pay providers on the chain this file describes (from `idlegrid chain deploy`)
    #[arg(long, value_name = "CHAIN.toml")]
    chain: Option<PathBuf>,
    /// A file holding the hex secp256k1 key that pays (default: a key kept in the OS keyring)
    #[arg(long, value_name = "FILE", requires = "chain")]
    chain_key_file: Option<PathBuf>,
    /// Replace a payout transaction not mined after this many seconds with one offering higher fees
    #[arg(long, value_name = "SECS", default_value_t = ChainPolicy::default().bump_after.as_secs(),
          requires = "chain")]
    chain_bump_secs: u64,
}

/// `idlegrid provide`'s payout flags.
#[derive(Args, Clone, Default)]
pub struct PayoutArgs {
    /// The address to be paid at on a chain (default: an account of this provider's own, its key
    /// kept in the OS keyring)
    #[arg(long, value_name = "0x…")]
    payout_address: Option<String>,
    /// Bind no payout address: pools on a chain hold this provider's balance until one is set
    #[arg(long, conflicts_with = "payout_address")]
    no_payout_address: bool,
    /// Check payouts through this RPC instead of the one each pool names
    #[arg(long, value_name = "URL")]
    chain_rpc: Option<String>,
}

#[derive(Args)]
pub struct PoolStatusArgs {
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Print the books as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct VerifyEarningsArgs {
    /// A proof of earnings, from `idlegrid earnings --proof`
    file: PathBuf,
    /// An RPC to check chain payouts through; repeat for more chains (each is matched to the
    /// payouts of the chain it serves)
    #[arg(long, value_name = "URL")]
    rpc: Vec<String>,
    /// Print the verdict as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct WalletArgs {
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Print the address and balances as JSON
    #[arg(long)]
    json: bool,
}

pub fn chain(command: ChainCommand) -> anyhow::Result<()> {
    let ChainCommand::Deploy(args) = command;
    let key = read_key_file(&args.key_file)?;
    let address = |text: &Option<String>| -> anyhow::Result<Option<idlegrid_chain::Address>> {
        text.as_deref()
            .map(|t| parse_address(t).map(idlegrid_chain::Address::from))
            .transpose()
            .map_err(anyhow::Error::msg)
    };
    let one_token = U256::from(10).pow(U256::from(6));
    let plan = DeployPlan {
        rpc: args.rpc.clone(),
        token: address(&args.token)?,
        test_mint: U256::from(args.test_deposit) * one_token * U256::from(10),
        test_deposit: U256::from(args.test_deposit) * one_token,
        payer: address(&args.payer)?,
        confirmations: args.confirmations.max(1),
        explorer: args.explorer.clone(),
    };
    let file = super::network::runtime()?.block_on(deploy(&plan, key))?;
    write_atomically(&args.out, file.to_toml().as_bytes())?;
    println!(
        "deployed: contract {} paying {} ({}) on chain {}; wrote {}",
        file.terms.contract,
        file.terms.symbol,
        file.terms.token,
        file.terms.chain_id,
        args.out.display()
    );
    Ok(())
}

fn read_key_file(path: &Path) -> anyhow::Result<idlegrid_chain::payer::PrivateKeySigner> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the key file {}", path.display()))?;
    parse_key(&text).with_context(|| format!("key file {}", path.display()))
}

/// Opens the pool in `data`, on its chain when `--chain` is given.
pub async fn open_pool(
    data: &Path,
    key: iroh::SecretKey,
    config: PoolConfig,
    args: &PoolChainArgs,
) -> anyhow::Result<Pool> {
    let Some(chain_path) = &args.chain else {
        return Ok(Pool::open(data, key, config)?);
    };
    let file = PoolChain::load(chain_path)?;
    let signer = match &args.chain_key_file {
        Some(path) => read_key_file(path)?,
        None => {
            let (bytes, _) =
                identity::load_or_create_key(data, &KeyStore::from_env(), &POOL_PAYER)?;
            account_signer(&bytes)?
        }
    };
    let payer = Payer::connect(&file, signer).await?;
    tracing::info!(
        payer = %payer.address(),
        contract = %file.terms.contract,
        chain = file.terms.chain_id,
        "paying on chain"
    );
    std::fs::create_dir_all(data).with_context(|| format!("cannot use {}", data.display()))?;
    write_atomically(&data.join(report::CHAIN_FILE), file.to_toml().as_bytes())?;
    let policy = ChainPolicy {
        bump_after: Duration::from_secs(args.chain_bump_secs.max(1)),
        ..ChainPolicy::default()
    };
    Ok(Pool::open_on_chain(
        data,
        key,
        config,
        ChainRail::new(payer, file, policy),
    )?)
}

/// The binding `provide` sends with its asks, as the flags choose.
pub fn payout_binding(
    data: &Path,
    key: &iroh::SecretKey,
    args: &PayoutArgs,
) -> anyhow::Result<Option<Signed<AddressBinding>>> {
    let choice = PayoutChoice::from_input(args.payout_address.as_deref(), args.no_payout_address)
        .map_err(|e| anyhow::anyhow!("--payout-address: {e}"))?;
    let binding = payout_address::binding(data, &KeyStore::from_env(), key, &choice)?;
    match &binding {
        Some(binding) => {
            tracing::info!(address = %binding.body.address_hex(), "payouts on a chain go to this address")
        }
        None => tracing::warn!(
            "no payout address: pools that pay on a chain hold this provider's balance until one is set"
        ),
    }
    Ok(binding)
}

pub fn chain_rpc(args: &PayoutArgs) -> Option<String> {
    args.chain_rpc.clone()
}

/// Checks a proof of earnings; fails naming everything that does not hold.
pub fn verify_earnings(args: VerifyEarningsArgs) -> anyhow::Result<()> {
    let text = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let bundle: ProofBundle = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a proof of earnings", args.file.display()))?;
    let verdict = super::network::runtime()?.block_on(proof::verify(&bundle, &args.rpc));
    crate::print(args.json, &verdict, || verdict.describe())?;
    if !verdict.holds() {
        bail!(
            "{} thing(s) in the proof do not hold: {}",
            verdict.problems.len(),
            verdict.problems.join("; ")
        );
    }
    Ok(())
}

pub fn pool_status(args: PoolStatusArgs) -> anyhow::Result<()> {
    let data = args.data.unwrap_or_else(default_data_dir);
    if !data.join("pool.sqlite").exists() {
        bail!("{} holds no pool", data.display());
    }
    let books = report::books(&data)?;
    let books = match report::chain_of(&data) {
        Some(chain) => super::network::runtime()?.block_on(report::with_deposit(books, &chain)),
        None => books,
    };
    crate::print(args.json, &books, || books.describe())
}

#[derive(Serialize)]
struct Wallet {
    address: Option<String>,
    balances: Vec<Balance>,
}

#[derive(Serialize)]
struct Balance {
    chain_id: u64,
    token: String,
    symbol: String,
    /// In the token's units, as a decimal string; absent with `error` when the chain did not answer.
    balance: Option<String>,
    error: Option<String>,
}

pub fn wallet(args: WalletArgs) -> anyhow::Result<()> {
    let data = args.data.unwrap_or_else(default_data_dir);
    let me = identity(&data)?.public();
    let ledger = Ledger::open(&data.join("ledger.sqlite"), me)?;
    let address = payout_address::bound_address(&data)
        .or_else(|| payout_address::own_address(&data, &KeyStore::from_env()).ok());
    let mut chains: Vec<PoolChain> = Vec::new();
    for (_, chain) in ledger.pool_chains()? {
        if !chains
            .iter()
            .any(|c| (c.terms.chain_id, c.terms.token) == (chain.terms.chain_id, chain.terms.token))
        {
            chains.push(chain);
        }
    }
    let runtime = super::network::runtime()?;
    let mut balances = Vec::new();
    for chain in chains {
        let result = match address {
            Some(owner) => runtime.block_on(idlegrid_chain::check::balance(
                &chain.rpc,
                chain.terms.token,
                idlegrid_chain::Address::from(owner),
            )),
            None => Ok(U256::ZERO),
        };
        balances.push(Balance {
            chain_id: chain.terms.chain_id,
            token: chain.terms.token.to_string(),
            symbol: chain.terms.symbol.clone(),
            balance: result.as_ref().ok().map(|u| chain.terms.format(*u)),
            error: result.err().map(|e| e.to_string()),
        });
    }
    let wallet = Wallet {
        address: address.as_ref().map(hex_address),
        balances,
    };
    crate::print(args.json, &wallet, || describe_wallet(&wallet))
}

fn describe_wallet(wallet: &Wallet) -> String {
    let mut out = match &wallet.address {
        Some(address) => format!("payout address: {address}\n"),
        None => {
            "no payout address: pools on a chain hold your balance until you set one\n".to_owned()
        }
    };
    if wallet.balances.is_empty() {
        out += "no pool has told of a chain it pays on yet\n";
    }
    for b in &wallet.balances {
        match (&b.balance, &b.error) {
            (Some(balance), _) => {
                out += &format!(
                    "chain {}: {balance} {} (token {})\n",
                    b.chain_id, b.symbol, b.token
                )
            }
            (None, error) => {
                out += &format!(
                    "chain {}: {} balance unknown ({})\n",
                    b.chain_id,
                    b.symbol,
                    error.as_deref().unwrap_or("no answer")
                )
            }
        }
    }
    out
}
