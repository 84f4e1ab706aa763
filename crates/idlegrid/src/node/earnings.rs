//! Earnings as the window shows them, computed from a snapshot of the ledger: buckets per pool over a
//! range, the rate over the last hour, today's total, problems (work that earned nothing) and payouts.
//! Pure functions of the ledger's entries, the pool names and the time; no I/O.
//!
//! Buckets are aligned to the local clock (hours; 00:00, 06:00, 12:00, 18:00; midnight) at the current
//! UTC offset: a daylight-saving change inside the range shifts older buckets by that hour, which a
//! chart of earnings can bear.

use std::collections::{BTreeMap, BTreeSet};

use crate::amount::Amount;
use crate::idle::Now;
use crate::ledger::{CheckEntry, Earnings, PayoutEntry, ReceiptEntry, UnpaidWork};

use super::views::{
    Bucket, CheckView, ChecksView, EarningsView, PayoutState, PayoutView, PoolTotal, Problem,
    ProblemKind, Range,
};

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;

/// The most problems the earnings page lists; older ones stay in the ledger.
const MAX_PROBLEMS: usize = 200;
const MAX_CHECKS: usize = 20;

/// The figures the status line carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Money {
    pub rate_per_hour: Amount,
    pub today: Amount,
    pub balance: Amount,
}

/// Pool ids to the names people gave them.
pub type PoolNames = BTreeMap<String, String>;

/// Pool ids to the symbol of the token each pays in on a chain; a pool not listed pays IOUs.
pub type PoolSymbols = BTreeMap<String, String>;

impl Range {
    /// Bucket length and how many buckets the range has.
    pub fn buckets(self) -> (u64, u64) {
        match self {
            Range::Day => (HOUR_MS, 24),
            Range::Week => (6 * HOUR_MS, 28),
            Range::Month => (DAY_MS, 30),
        }
    }
}

/// A pool's name, or the first 8 characters of its key for one never named here.
pub fn pool_name(names: &PoolNames, id: &str) -> String {
    names
        .get(id)
        .cloned()
        .unwrap_or_else(|| id.chars().take(8).collect())
}

pub fn add(a: Amount, b: Amount) -> Amount {
    Amount::from_micros(a.micros().saturating_add(b.micros()))
}

fn sum<'a>(receipts: impl Iterator<Item = &'a ReceiptEntry>) -> Amount {
    receipts.fold(Amount::ZERO, |total, r| add(total, r.amount))
}

/// The start of the local period of `length` that holds `now` (a local midnight for a day), in Unix ms.
pub fn period_start(now: Now, length: u64) -> u64 {
    let offset_ms = i64::from(now.utc_offset_s) * 1000;
    let local = now.unix_ms as i64 + offset_ms;
    let start = local - local.rem_euclid(length as i64) - offset_ms;
    start.max(0) as u64
}

pub fn money(earnings: &Earnings, now: Now) -> Money {
    let hour_ago = now.unix_ms.saturating_sub(HOUR_MS);
    let midnight = period_start(now, DAY_MS);
    Money {
        rate_per_hour: sum(earnings
            .receipts
            .iter()
            .filter(|r| r.issued_at_ms > hour_ago && r.issued_at_ms <= now.unix_ms)),
        today: sum(earnings
            .receipts
            .iter()
            .filter(|r| r.issued_at_ms >= midnight)),
        balance: earnings.balance,
    }
}

/// A pool's earnings: all time, and since local midnight.
pub fn pool_earned(earnings: &Earnings, pool_id: &str, now: Now) -> (Amount, Amount) {
    let midnight = period_start(now, DAY_MS);
    let mine = || earnings.receipts.iter().filter(|r| r.pool == pool_id);
    (
        sum(mine()),
        sum(mine().filter(|r| r.issued_at_ms >= midnight)),
    )
}

pub fn earnings_view(
    range: Range,
    earnings: &Earnings,
    names: &PoolNames,
    symbols: &PoolSymbols,
    now: Now,
) -> EarningsView {
    let (bucket_ms, count) = range.buckets();
    let end = period_start(now, bucket_ms) + bucket_ms;
    let start = end.saturating_sub(bucket_ms * count);
    let mut buckets: Vec<Bucket> = (0..count)
        .map(|i| Bucket {
            start_ms: start + i * bucket_ms,
            by_pool: BTreeMap::new(),
        })
        .collect();
    let mut totals: BTreeMap<&str, Amount> = BTreeMap::new();
    let mut total = Amount::ZERO;
    for receipt in &earnings.receipts {
        if receipt.issued_at_ms < start || receipt.issued_at_ms >= end {
            continue;
        }
        let index = ((receipt.issued_at_ms - start) / bucket_ms) as usize;
        let in_bucket = buckets[index]
            .by_pool
            .entry(receipt.pool.clone())
            .or_default();
        *in_bucket = add(*in_bucket, receipt.amount);
        let pool_total = totals.entry(&receipt.pool).or_default();
        *pool_total = add(*pool_total, receipt.amount);
        total = add(total, receipt.amount);
    }
    let mut pools: Vec<PoolTotal> = totals
        .into_iter()
        .map(|(id, total)| PoolTotal {
            id: id.to_owned(),
            name: pool_name(names, id),
            total,
            symbol: symbols.get(id).cloned(),
        })
        .collect();
    pools.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.name.cmp(&b.name)));
    let (units, iou) = units(earnings, symbols);
    EarningsView {
        range,
        bucket_ms,
        buckets,
        pools,
        symbols: units,
        iou,
        total,
        paid: earnings.paid,
        balance: earnings.balance,
        problems: problems(&earnings.unpaid_work, names),
        checks: checks(&earnings.checks, names),
    }
}

/// The tokens the pools this provider earned from pay in, and whether any of them pays IOUs.
fn units(earnings: &Earnings, symbols: &PoolSymbols) -> (Vec<String>, bool) {
    let pools: BTreeSet<&str> = earnings.receipts.iter().map(|r| r.pool.as_str()).collect();
    let tokens: BTreeSet<&String> = pools.iter().filter_map(|p| symbols.get(*p)).collect();
    let iou = pools.iter().any(|p| !symbols.contains_key(*p));
    (tokens.into_iter().cloned().collect(), iou)
}

pub fn checks(checks: &[CheckEntry], names: &PoolNames) -> ChecksView {
    let passed = checks.iter().filter(|c| c.passed).count();
    ChecksView {
        passed,
        failed: checks.len() - passed,
        recent: checks
            .iter()
            .rev()
            .take(MAX_CHECKS)
            .map(|c| check(c, names))
            .collect(),
    }
}

pub fn check(entry: &CheckEntry, names: &PoolNames) -> CheckView {
    CheckView {
        at_ms: entry.issued_at_ms,
        pool_id: entry.pool.clone(),
        pool_name: pool_name(names, &entry.pool),
        job: entry.job_name.clone(),
        passed: entry.passed,
    }
}

/// Work that earned nothing, newest first.
pub fn problems(unpaid: &[UnpaidWork], names: &PoolNames) -> Vec<Problem> {
    unpaid
        .iter()
        .rev()
        .take(MAX_PROBLEMS)
        .map(|work| problem(work, names))
        .collect()
}

pub fn problem(work: &UnpaidWork, names: &PoolNames) -> Problem {
    Problem {
        at_ms: work.at_ms,
        pool_id: work.pool.clone(),
        pool_name: pool_name(names, &work.pool),
        job: work.job_name.clone(),
        kind: problem_kind(&work.reason),
        reason: work.reason.clone(),
    }
}

/// Sorts a reason the ledger recorded (the pool's or the executor's words) into the four kinds the
/// window tells apart. The ledger keeps reasons as text, so this reads the engine's own phrasings.
pub fn problem_kind(reason: &str) -> ProblemKind {
    let reason = reason.to_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| reason.contains(w));
    if any(&[
        "deadline",
        "timed out",
        "expired",
        "lapsed",
        "past its lease",
    ]) {
        ProblemKind::TimedOut
    } else if any(&["disagree", "quorum", "rejected", "canary", "do not match"]) {
        ProblemKind::Rejected
    } else if any(&[
        "already returned",
        "no longer wanted",
        "not one of yours",
        "unpaid",
    ]) {
        ProblemKind::Unpaid
    } else {
        ProblemKind::Failed
    }
}

/// Payouts, newest first.
pub fn payouts(earnings: &Earnings, names: &PoolNames) -> Vec<PayoutView> {
    earnings
        .payouts
        .iter()
        .rev()
        .map(|payout| payout_view(payout, names))
        .collect()
}

pub fn payout_view(payout: &PayoutEntry, names: &PoolNames) -> PayoutView {
    PayoutView {
        id: payout.id.clone(),
        at_ms: payout.issued_at_ms,
        pool_id: payout.pool.clone(),
        pool_name: pool_name(names, &payout.pool),
        amount: payout.amount,
        symbol: payout.symbol.clone(),
        receipts: payout.receipt_count,
        signature_verified: payout.signed,
        status: payout.status,
        rail: payout.rail.clone(),
        reference: payout.reference.clone(),
        chain_id: payout.chain_id,
        to: payout.to.clone(),
        tx_hash: payout.tx_hash.clone(),
        explorer_url: payout.explorer_url.clone(),
        block: payout.block,
        confirmations: payout.confirmations,
        checked_through_pool: payout.checked_through_pool,
        note: payout.note.clone(),
    }
}

/// The explorer page of payout `id`'s transaction, to open outside the window: only an http(s)
/// link, since the explorer is whatever the pool named and anything else could open a program.
pub fn explorer_link(payouts: &[PayoutEntry], id: &str) -> Result<String, String> {
    let payout = payouts
        .iter()
        .find(|p| p.id == id)
        .ok_or_else(|| format!("no payout {id}"))?;
    match &payout.explorer_url {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => Ok(url.clone()),
        Some(url) => Err(format!(
            "the pool's explorer link {url:?} is not an http(s) address; not opened"
        )),
        None => Err("the pool's chain names no block explorer".to_owned()),
    }
}

/// The desktop notice for a payout's news: once it counts as paid (confirmed on chain, or an IOU),
/// or when the chain does not show it; none while it is pending, since its news repeats until then.
pub fn payout_notice(payout: &PayoutView) -> Option<(String, String)> {
    let receipts = format!(
        "{} receipt{}",
        payout.receipts,
        if payout.receipts == 1 { "" } else { "s" }
    );
    let symbol = payout.symbol.as_deref().unwrap_or("IOU");
    match payout.status {
        PayoutState::Pending => None,
        PayoutState::Confirmed => Some((
            format!(
                "Paid {} {symbol} by pool {}",
                payout.amount, payout.pool_name
            ),
            format!("{receipts} settled, confirmed on chain by this computer."),
        )),
        PayoutState::Iou => Some((
            format!("IOU of {} from pool {}", payout.amount, payout.pool_name),
            format!("{receipts} settled. Signed by the pool, not paid on a chain."),
        )),
        PayoutState::NotFound => Some((
            format!("A payout from pool {} is not on chain", payout.pool_name),
            format!(
                "{} {symbol} is not counted as paid: {}",
                payout.amount,
                payout
                    .note
                    .as_deref()
                    .unwrap_or("the chain does not show it")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-24 15:30:00 UTC, a Tuesday.
    const T: u64 = 1_795_534_200_000;

    fn now(offset_h: i32) -> Now {
        Now {
            unix_ms: T,
            utc_offset_s: offset_h * 3600,
        }
    }

    fn receipt(pool: &str, at_ms: u64, micros: u64) -> ReceiptEntry {
        ReceiptEntry {
            id: format!("{pool}{at_ms}"),
            pool: pool.into(),
            job: "j".into(),
            job_name: "matmul".into(),
            amount: Amount::from_micros(micros),
            output_hash: "h".into(),
            issued_at_ms: at_ms,
            paid_by: None,
            signature_verified: true,
        }
    }

    fn ledger(receipts: Vec<ReceiptEntry>) -> Earnings {
        Earnings {
            provider: "me".into(),
            balance: sum(receipts.iter()),
            paid: Amount::from_micros(7),
            total: sum(receipts.iter()),
            receipts,
            payouts: Vec::new(),
            unpaid_work: Vec::new(),
            checks: Vec::new(),
        }
    }

    #[test]
    fn periods_start_at_local_boundaries() {
        assert_eq!(period_start(now(0), DAY_MS), T - 15 * HOUR_MS - 30 * 60_000);
        // At UTC+2 it is 17:30: local midnight was 17.5 hours ago.
        assert_eq!(period_start(now(2), DAY_MS), T - 17 * HOUR_MS - 30 * 60_000);
        // At UTC-5 it is 10:30; the 6-hour block began at 06:00 local.
        assert_eq!(
            period_start(now(-5), 6 * HOUR_MS),
            T - 4 * HOUR_MS - 30 * 60_000
        );
        assert_eq!(period_start(now(0), HOUR_MS), T - 30 * 60_000);
    }

    #[test]
    fn rate_counts_the_last_hour_and_today_counts_from_local_midnight() {
        let earnings = ledger(vec![
            receipt("a", T - 2 * HOUR_MS, 100),
            receipt("a", T - 30 * 60_000, 10),
            receipt("b", T - 1, 1),
            receipt("b", T - 16 * HOUR_MS, 1_000),
        ]);
        let money = money(&earnings, now(0));
        assert_eq!(money.rate_per_hour, Amount::from_micros(11));
        assert_eq!(money.today, Amount::from_micros(111));
        assert_eq!(money.balance, Amount::from_micros(1_111));
        // At UTC+2 the receipt 16 hours ago was still today.
        assert_eq!(
            super::money(&earnings, now(2)).today,
            Amount::from_micros(1_111)
        );
    }

    #[test]
    fn buckets_cover_the_range_and_split_by_pool() {
        let earnings = ledger(vec![
            receipt("a", T, 5),
            receipt("b", T - 10 * 60_000, 3),
            receipt("a", T - 3 * HOUR_MS, 2),
            receipt("a", T - 30 * HOUR_MS, 1_000),
        ]);
        let mut names = PoolNames::new();
        names.insert("a".into(), "Home".into());
        let view = earnings_view(Range::Day, &earnings, &names, &PoolSymbols::new(), now(0));
        assert_eq!(view.buckets.len(), 24);
        assert_eq!(view.bucket_ms, HOUR_MS);
        let last = view.buckets.last().unwrap();
        assert_eq!(last.start_ms, T - 30 * 60_000);
        assert_eq!(last.by_pool["a"], Amount::from_micros(5));
        assert_eq!(last.by_pool["b"], Amount::from_micros(3));
        assert_eq!(view.buckets[20].by_pool["a"], Amount::from_micros(2));
        assert!(view.buckets[0].by_pool.is_empty());
        assert_eq!(view.total, Amount::from_micros(10));
        assert_eq!(view.pools[0].name, "Home");
        assert_eq!(view.pools[0].total, Amount::from_micros(7));
        assert_eq!(view.pools[1].name, "b");
        let week = earnings_view(Range::Week, &earnings, &names, &PoolSymbols::new(), now(0));
        assert_eq!(
            (week.buckets.len(), week.total),
            (28, Amount::from_micros(1_010))
        );
        let month = earnings_view(Range::Month, &earnings, &names, &PoolSymbols::new(), now(0));
        assert_eq!(month.buckets.len(), 30);
        assert_eq!(month.buckets[29].start_ms, period_start(now(0), DAY_MS));
    }

    #[test]
    fn reasons_sort_into_kinds() {
        for (reason, kind) in [
            (
                "the job ran past its deadline of 2 s",
                ProblemKind::TimedOut,
            ),
            (
                "lease 4 is expired; its result is no longer wanted",
                ProblemKind::TimedOut,
            ),
            ("outputs disagree with the quorum", ProblemKind::Rejected),
            (
                "a result for this job from this provider was already returned",
                ProblemKind::Unpaid,
            ),
            ("GPU error: out of memory", ProblemKind::Failed),
        ] {
            assert_eq!(problem_kind(reason), kind, "{reason}");
        }
    }

    #[test]
    fn problems_and_payouts_come_newest_first_with_names() {
        let mut earnings = ledger(Vec::new());
        earnings.unpaid_work = (0..3)
            .map(|i| UnpaidWork {
                pool: "abcdefghijk".into(),
                job: "j".into(),
                job_name: format!("job{i}"),
                reason: "timed out".into(),
                at_ms: i,
            })
            .collect();
        earnings.payouts = (0..2)
            .map(|i| PayoutEntry {
                id: format!("p{i}"),
                pool: "abcdefghijk".into(),
                amount: Amount::from_micros(10),
                receipt_count: 2,
                issued_at_ms: i,
                ..PayoutEntry::blank("ledger".into(), "r".into())
            })
            .collect();
        let names = PoolNames::new();
        let problems = problems(&earnings.unpaid_work, &names);
        assert_eq!(problems[0].job, "job2");
        assert_eq!(problems[0].pool_name, "abcdefgh");
        assert_eq!(problems[0].kind, ProblemKind::TimedOut);
        let payouts = payouts(&earnings, &names);
        assert_eq!(payouts[0].id, "p1");
        assert!(payouts[0].signature_verified);
    }

    #[test]
    fn a_chain_payout_shows_its_token_status_and_transaction() {
        let tx = format!("0x{}", "ab".repeat(32));
        let chain = PayoutEntry {
            id: "c".into(),
            pool: "abcdefghijk".into(),
            amount: Amount::from_micros(1_200),
            receipt_count: 3,
            issued_at_ms: 5,
            status: PayoutState::Confirmed,
            chain_id: Some(31_337),
            symbol: Some("tUSD".into()),
            to: Some(format!("0x{}", "11".repeat(20))),
            tx_hash: Some(tx.clone()),
            block: Some(12),
            confirmations: Some(3),
            explorer_url: Some(format!("https://explorer.invalid/tx/{tx}")),
            checked_via: Some("http://127.0.0.1:8545".into()),
            checked_through_pool: true,
            ..PayoutEntry::blank("evm".into(), "{}".into())
        };
        let names = PoolNames::from([("abcdefghijk".to_owned(), "Lab".to_owned())]);
        let view = payout_view(&chain, &names);
        assert_eq!(view.status, PayoutState::Confirmed);
        assert_eq!(view.symbol.as_deref(), Some("tUSD"));
        assert_eq!(view.tx_hash.as_deref(), Some(tx.as_str()));
        assert_eq!(
            view.explorer_url,
            Some(format!("https://explorer.invalid/tx/{tx}"))
        );
        assert_eq!((view.block, view.confirmations), (Some(12), Some(3)));
        assert_eq!((view.pool_name.as_str(), view.receipts), ("Lab", 3));
        assert!(view.checked_through_pool && view.signature_verified);

        let notice = PayoutEntry {
            status: PayoutState::Pending,
            signed: false,
            checked_through_pool: false,
            ..chain.clone()
        };
        let view = payout_view(&notice, &names);
        assert_eq!(view.status, PayoutState::Pending);
        assert!(!view.signature_verified && !view.checked_through_pool);

        let missing = PayoutEntry {
            status: PayoutState::NotFound,
            note: Some("the transaction failed".into()),
            ..chain
        };
        let view = payout_view(&missing, &names);
        assert_eq!(view.status, PayoutState::NotFound);
        assert_eq!(view.note.as_deref(), Some("the transaction failed"));

        let iou = payout_view(&PayoutEntry::blank("statement".into(), "r".into()), &names);
        assert_eq!(iou.status, PayoutState::Iou);
        assert_eq!((iou.symbol, iou.tx_hash), (None, None));
    }

    #[test]
    fn totals_name_the_token_each_pool_pays_in() {
        let earnings = ledger(vec![
            receipt("chain", T, 5),
            receipt("iou", T, 3),
            receipt("other", T - 40 * DAY_MS, 1),
        ]);
        let symbols = PoolSymbols::from([
            ("chain".to_owned(), "tUSD".to_owned()),
            ("other".to_owned(), "USDC".to_owned()),
        ]);
        let view = earnings_view(Range::Day, &earnings, &PoolNames::new(), &symbols, now(0));
        let symbol_of = |id: &str| {
            view.pools
                .iter()
                .find(|p| p.id == id)
                .unwrap()
                .symbol
                .clone()
        };
        assert_eq!(symbol_of("chain").as_deref(), Some("tUSD"));
        assert_eq!(symbol_of("iou"), None);
        // Paid and the balance are all time: every pool earned from counts, in range or not.
        assert_eq!(view.symbols, ["USDC", "tUSD"]);
        assert!(view.iou);
        let one = ledger(vec![receipt("chain", T, 5)]);
        let view = earnings_view(Range::Day, &one, &PoolNames::new(), &symbols, now(0));
        assert_eq!((view.symbols, view.iou), (vec!["tUSD".to_owned()], false));
    }

    #[test]
    fn only_an_http_explorer_link_is_opened() {
        let with = |id: &str, url: Option<&str>| PayoutEntry {
            id: id.into(),
            explorer_url: url.map(str::to_owned),
            ..PayoutEntry::blank("evm".into(), "{}".into())
        };
        let payouts = [
            with("web", Some("https://explorer.example/tx/0x01")),
            with("file", Some("file:///etc/passwd")),
            with("none", None),
        ];
        assert_eq!(
            explorer_link(&payouts, "web").as_deref(),
            Ok("https://explorer.example/tx/0x01")
        );
        assert!(
            explorer_link(&payouts, "file")
                .unwrap_err()
                .contains("not an http(s)")
        );
        assert!(
            explorer_link(&payouts, "none")
                .unwrap_err()
                .contains("names no block explorer")
        );
        assert!(
            explorer_link(&payouts, "gone")
                .unwrap_err()
                .contains("no payout gone")
        );
    }

    #[test]
    fn a_payout_is_announced_once_it_counts_or_is_missing_never_while_pending() {
        let names = PoolNames::from([("p".to_owned(), "Lab".to_owned())]);
        let entry = |status, symbol: Option<&str>| PayoutEntry {
            pool: "p".into(),
            amount: Amount::from_micros(1_200),
            receipt_count: 1,
            status,
            symbol: symbol.map(str::to_owned),
            note: Some("the transaction failed".into()),
            ..PayoutEntry::blank("evm".into(), "{}".into())
        };
        let notice = |status, symbol| payout_notice(&payout_view(&entry(status, symbol), &names));
        assert_eq!(notice(PayoutState::Pending, Some("tUSD")), None);
        let (title, body) = notice(PayoutState::Confirmed, Some("tUSD")).unwrap();
        assert_eq!(title, "Paid 0.0012 tUSD by pool Lab");
        assert_eq!(
            body,
            "1 receipt settled, confirmed on chain by this computer."
        );
        let (title, body) = notice(PayoutState::Iou, None).unwrap();
        assert_eq!(title, "IOU of 0.0012 from pool Lab");
        assert!(body.contains("not paid on a chain"), "{body}");
        let (title, body) = notice(PayoutState::NotFound, Some("tUSD")).unwrap();
        assert!(title.contains("not on chain"), "{title}");
        assert!(
            body.ends_with("not counted as paid: the transaction failed"),
            "{body}"
        );
    }
}
