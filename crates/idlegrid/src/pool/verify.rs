//! How a pool decides that results are right: replicas compared bit-exactly, within a relative
//! tolerance or row by row by cosine similarity, a majority that must be reached, and how many replicas a job needs given who ran it.
//! Pure functions over data, so every rule is tested as a table.

use iroh::PublicKey;

use crate::job::{CosineCheck, Verify};
use crate::statement::Id;

/// How two results' outputs are compared, from the job's `[verify]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Comparison {
    Exact,
    /// f32 values within this relative error.
    Relative(f64),
    /// Rows of f32 values agreeing by cosine similarity.
    Cosine(CosineCheck),
}

impl Comparison {
    pub fn of(verify: &Verify) -> Comparison {
        match verify.cosine {
            Some(check) => Comparison::Cosine(check),
            None if verify.tolerance > 0.0 => Comparison::Relative(verify.tolerance),
            None => Comparison::Exact,
        }
    }

    /// Whether deciding needs the outputs' bytes, not only their digests.
    pub fn needs_bytes(self) -> bool {
        self != Comparison::Exact
    }
}

/// One provider's returned result.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub provider: PublicKey,
    /// Hash over every output's name and bytes.
    pub digest: Id,
    /// The outputs' bytes, needed only when comparing within a tolerance or by cosine.
    pub outputs: Vec<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not enough agreeing results yet: lease the job again.
    Pending,
    /// A majority of at least `needed` agree; `agree` and `disagree` index the candidates.
    Agreed {
        agree: Vec<usize>,
        disagree: Vec<usize>,
    },
    /// No majority after the most results a job may take.
    Failed { reason: String },
}

/// Results a job may collect before the pool gives up on a majority.
pub fn max_results(needed: u32) -> usize {
    2 * needed as usize + 1
}

/// Judges the results so far of a job that needs `needed` agreeing ones.
pub fn judge(candidates: &[Candidate], needed: u32, comparison: Comparison) -> Verdict {
    let mut classes: Vec<Vec<usize>> = Vec::new();
    for (i, candidate) in candidates.iter().enumerate() {
        match classes
            .iter_mut()
            .find(|class| agree(&candidates[class[0]], candidate, comparison))
        {
            Some(class) => class.push(i),
            None => classes.push(vec![i]),
        }
    }
    let Some(largest) = classes.iter().max_by_key(|c| c.len()) else {
        return Verdict::Pending;
    };
    let others = candidates.len() - largest.len();
    if largest.len() >= needed.max(1) as usize && largest.len() > others {
        let disagree = (0..candidates.len())
            .filter(|i| !largest.contains(i))
            .collect();
        return Verdict::Agreed {
            agree: largest.clone(),
            disagree,
        };
    }
    if candidates.len() >= max_results(needed) {
        return Verdict::Failed {
            reason: format!(
                "providers disagreed: {} results, {} different answers, no majority of {needed}",
                candidates.len(),
                classes.len()
            ),
        };
    }
    Verdict::Pending
}

fn agree(a: &Candidate, b: &Candidate, comparison: Comparison) -> bool {
    if a.digest == b.digest {
        return true;
    }
    let outputs_agree = |same: &dyn Fn(&[u8], &[u8]) -> bool| {
        a.outputs.len() == b.outputs.len()
            && a.outputs.iter().zip(&b.outputs).all(|(x, y)| same(x, y))
    };
    match comparison {
        Comparison::Exact => false,
        Comparison::Relative(tolerance) => outputs_agree(&|x, y| within_tolerance(x, y, tolerance)),
        Comparison::Cosine(check) => outputs_agree(&|x, y| rows_agree_by_cosine(x, y, check)),
    }
}

/// Both buffers read as rows of `check.row` little-endian f32: every pair of rows has a cosine
/// similarity of at least `check.min`. A row that is all zeros, or holds a NaN or an infinity, agrees
/// with nothing: a result made of them cannot pass for any answer.
pub fn rows_agree_by_cosine(a: &[u8], b: &[u8], check: CosineCheck) -> bool {
    let row_bytes = check.row as usize * 4;
    if a.len() != b.len() || row_bytes == 0 || !a.len().is_multiple_of(row_bytes) {
        return false;
    }
    a.chunks_exact(row_bytes)
        .zip(b.chunks_exact(row_bytes))
        .all(|(x, y)| {
            let (mut dot, mut xx, mut yy) = (0.0f64, 0.0f64, 0.0f64);
            for (p, q) in x.chunks_exact(4).zip(y.chunks_exact(4)) {
                let p = f64::from(f32::from_le_bytes([p[0], p[1], p[2], p[3]]));
                let q = f64::from(f32::from_le_bytes([q[0], q[1], q[2], q[3]]));
                dot += p * q;
                xx += p * p;
                yy += q * q;
            }
            let cosine = dot / (xx.sqrt() * yy.sqrt());
            cosine.is_finite() && cosine >= check.min
        })
}

/// Both buffers read as little-endian f32, element by element: equal (NaN matching NaN), or off by at
/// most `tolerance` relative to the larger magnitude.
pub fn within_tolerance(a: &[u8], b: &[u8], tolerance: f64) -> bool {
    if a.len() != b.len() || !a.len().is_multiple_of(4) {
        return false;
    }
    a.chunks_exact(4).zip(b.chunks_exact(4)).all(|(x, y)| {
        let x = f64::from(f32::from_le_bytes([x[0], x[1], x[2], x[3]]));
        let y = f64::from(f32::from_le_bytes([y[0], y[1], y[2], y[3]]));
        x == y || (x.is_nan() && y.is_nan()) || (x - y).abs() <= tolerance * x.abs().max(y.abs())
    })
}

/// Whether a job should be leased once more: when the leases out and the largest agreeing group of
/// results cannot yet make `needed`, or when results disagree and nothing in flight could settle it.
pub fn wants_replica(needed: u32, active_leases: u32, pending: &[Id]) -> bool {
    let largest = pending
        .iter()
        .map(|d| pending.iter().filter(|e| *e == d).count())
        .max()
        .unwrap_or(0);
    (active_leases as usize + largest) < needed as usize
        || (active_leases == 0 && !pending.is_empty())
}

/// How a pool trusts providers: a new one's results are always checked against another provider's;
/// one with a long clean record runs alone when the submitter asks for no more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicationPolicy {
    /// Replicas a job needs while any provider on it is not yet trusted.
    pub untrusted_replicas: u32,
    /// Reputation at which a provider is trusted.
    pub trusted_at: i64,
}

impl Default for ReplicationPolicy {
    fn default() -> Self {
        ReplicationPolicy {
            untrusted_replicas: 2,
            trusted_at: 10,
        }
    }
}

/// A provider's standing: one point per result that agreed with a quorum or passed a canary, ten off
/// for each that did not, so one lie costs ten honest results.
pub fn reputation(clean: u64, strikes: u64) -> i64 {
    i64::try_from(clean).unwrap_or(i64::MAX).saturating_sub(
        i64::try_from(strikes)
            .unwrap_or(i64::MAX)
            .saturating_mul(10),
    )
}

impl ReplicationPolicy {
    /// Agreeing results a job needs, never fewer than the submitter asked for.
    pub fn needed(&self, requested: u32, all_trusted: bool) -> u32 {
        if all_trusted {
            requested.max(1)
        } else {
            requested.max(self.untrusted_replicas).max(1)
        }
    }

    pub fn trusts(&self, reputation: i64) -> bool {
        reputation >= self.trusted_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(answer: u8) -> Candidate {
        Candidate {
            provider: iroh::SecretKey::generate().public(),
            digest: Id([answer; 32]),
            outputs: vec![],
        }
    }

    fn floats(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn majorities_table() {
        let agreed = |agree: &[usize], disagree: &[usize]| Verdict::Agreed {
            agree: agree.to_vec(),
            disagree: disagree.to_vec(),
        };
        let cases: &[(&[u8], u32, Verdict)] = &[
            (&[], 1, Verdict::Pending),
            (&[1], 1, agreed(&[0], &[])),
            (&[1], 2, Verdict::Pending),
            (&[1, 1], 2, agreed(&[0, 1], &[])),
            (&[1, 2], 2, Verdict::Pending),
            (&[1, 2, 1], 2, agreed(&[0, 2], &[1])),
            (&[1, 2, 3], 2, Verdict::Pending),
            // Two of four is not a majority, however the other two split.
            (&[1, 2, 3, 1], 2, Verdict::Pending),
            (&[1, 2, 3, 1, 1], 2, agreed(&[0, 3, 4], &[1, 2])),
            // Two against two is no majority, even though two reach `needed`.
            (&[1, 1, 2, 2], 2, Verdict::Pending),
            (&[1, 1, 1], 3, agreed(&[0, 1, 2], &[])),
        ];
        for (answers, needed, expected) in cases {
            let candidates: Vec<_> = answers.iter().map(|&a| candidate(a)).collect();
            assert_eq!(
                &judge(&candidates, *needed, Comparison::Exact),
                expected,
                "{answers:?} needing {needed}"
            );
        }
    }

    #[test]
    fn gives_up_after_the_most_results_a_job_may_take() {
        let candidates: Vec<_> = [1, 2, 3, 4, 5].iter().map(|&a| candidate(a)).collect();
        let Verdict::Failed { reason } = judge(&candidates, 2, Comparison::Exact) else {
            panic!("expected failure");
        };
        assert!(
            reason.contains("5 results, 5 different answers"),
            "{reason}"
        );
        assert_eq!(
            judge(&candidates[..4], 2, Comparison::Exact),
            Verdict::Pending
        );
    }

    #[test]
    fn tolerance_is_relative_and_applies_to_f32_outputs_only_when_asked() {
        let mut a = candidate(1);
        let mut b = candidate(2);
        a.outputs = vec![floats(&[1000.0, 1.0, f32::NAN])];
        b.outputs = vec![floats(&[1000.01, 1.000001, f32::NAN])];
        assert_eq!(
            judge(&[a.clone(), b.clone()], 2, Comparison::Exact),
            Verdict::Pending
        );
        assert!(matches!(
            judge(&[a.clone(), b.clone()], 2, Comparison::Relative(1e-4)),
            Verdict::Agreed { .. }
        ));
        assert_eq!(
            judge(&[a.clone(), b.clone()], 2, Comparison::Relative(1e-6)),
            Verdict::Pending
        );
        b.outputs = vec![floats(&[1000.0, 1.0])];
        assert_eq!(
            judge(&[a, b], 2, Comparison::Relative(0.5)),
            Verdict::Pending,
            "lengths differ"
        );
    }

    #[test]
    fn cosine_compares_row_by_row_and_refuses_degenerate_rows() {
        let check = CosineCheck {
            min: 0.9999,
            row: 3,
        };
        let cosine = |x: &[f32], y: &[f32]| rows_agree_by_cosine(&floats(x), &floats(y), check);
        // Scale does not matter, direction does, and every row must agree.
        assert!(cosine(
            &[1.0, 2.0, 3.0, 0.0, 1.0, 0.0],
            &[2.0, 4.0, 6.0, 0.0, 1.0, 0.001]
        ));
        assert!(!cosine(
            &[1.0, 2.0, 3.0, 0.0, 1.0, 0.0],
            &[1.0, 2.0, 3.0, 0.0, 1.0, 0.1]
        ));
        assert!(!cosine(&[0.0; 3], &[0.0; 3]), "all zeros");
        assert!(!cosine(&[f32::NAN, 1.0, 1.0], &[f32::NAN, 1.0, 1.0]), "NaN");
        assert!(
            !cosine(&[1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 3.0, 4.0]),
            "not whole rows"
        );
        let mut a = candidate(1);
        let mut b = candidate(2);
        a.outputs = vec![floats(&[1.0, 2.0, 3.0])];
        b.outputs = vec![floats(&[1.00001, 2.0, 3.0])];
        assert!(matches!(
            judge(&[a, b], 2, Comparison::Cosine(check)),
            Verdict::Agreed { .. }
        ));
        let verify = Verify {
            replicas: 2,
            tolerance: 0.0,
            cosine: Some(check),
        };
        assert_eq!(Comparison::of(&verify), Comparison::Cosine(check));
    }

    #[test]
    fn a_job_is_leased_again_until_a_majority_can_form() {
        let (a, b) = (Id([1; 32]), Id([2; 32]));
        assert!(wants_replica(2, 0, &[]));
        assert!(wants_replica(2, 1, &[]));
        assert!(!wants_replica(2, 2, &[]));
        assert!(wants_replica(2, 0, &[a]));
        assert!(!wants_replica(2, 1, &[a]));
        // One against one: nothing in flight can break the tie, so lease again.
        assert!(wants_replica(2, 0, &[a, b]));
        assert!(!wants_replica(2, 1, &[a, b]));
        assert!(wants_replica(1, 0, &[]));
        assert!(!wants_replica(1, 1, &[]));
    }

    #[test]
    fn replication_never_below_the_submitters_ask() {
        let policy = ReplicationPolicy::default();
        assert_eq!(policy.needed(1, false), 2);
        assert_eq!(policy.needed(1, true), 1);
        assert_eq!(policy.needed(3, true), 3);
        assert_eq!(policy.needed(3, false), 3);
        assert_eq!(policy.needed(0, true), 1);
        assert!(policy.trusts(reputation(10, 0)));
        assert!(!policy.trusts(reputation(19, 1)));
        assert!(reputation(0, 1) < reputation(0, 0));
    }
}
