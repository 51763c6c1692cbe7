//! The search: the seed, then a seeded random sample of the space, then coordinate
//! refinement around the best point found (each knob one notch either way), then random
//! moves of two knobs around it while budget remains. Candidates are validated before
//! they are evaluated (an invalid one costs no budget) and each point is evaluated once.
//!
//! Each round's candidates are fixed before any is evaluated and their results are kept
//! in the round's order, so the outcome depends on the seed only, not on the number of
//! threads or which finishes first.
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use podscale_sim::Policy;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt as _, SeedableRng as _};
use serde::Serialize;

use crate::eval::{Evaluate, Score};
use crate::space::Space;
use crate::{Error, Result};

/// Most candidates one search may evaluate (`--budget`).
pub const MAX_BUDGET: usize = 5_000;
/// Most threads.
pub const MAX_THREADS: usize = 64;
/// Draws per wanted candidate before a random round gives up on finding unseen, valid
/// points (a small space is exhausted).
const DRAWS_PER_CANDIDATE: usize = 50;

/// How to search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchOptions {
    /// Candidates evaluated at most, the seed included.
    pub budget: usize,
    /// Seed of the random draws.
    pub seed: u64,
    /// Evaluations run at once.
    pub threads: usize,
}

impl SearchOptions {
    /// # Errors
    /// A budget or thread count of 0 or past its limit.
    pub fn check(&self) -> Result<()> {
        if self.budget < 1 {
            return Err(Error::Options("--budget must be at least 1".into()));
        }
        if self.budget > MAX_BUDGET {
            return Err(Error::Limit {
                what: "--budget asks for",
                amount: format!("{} candidates", self.budget),
                limit: MAX_BUDGET.to_string(),
            });
        }
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return Err(Error::Options(format!(
                "--threads must be from 1 to {MAX_THREADS}, found {}",
                self.threads
            )));
        }
        Ok(())
    }
}

/// One evaluated candidate.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// Order of evaluation (0: the seed).
    pub index: usize,
    #[serde(skip)]
    pub point: Vec<usize>,
    /// What it changes from the seed.
    pub changes: String,
    pub score: Score,
    /// The validated manifest.
    #[serde(skip)]
    pub manifest: String,
    #[serde(skip)]
    pub policy: Policy,
}

/// What a search found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Every candidate evaluated, in order; the first is the seed.
    pub candidates: Vec<Candidate>,
    /// The cheapest candidate meeting the goal (fewest replica-hours; ties: higher
    /// attainment, then earlier), if any did.
    pub winner: Option<usize>,
    /// Indices of the Pareto front of replica-hours (lower is better) against SLO
    /// attainment (higher is better), by replica-hours.
    pub front: Vec<usize>,
    /// Points drawn that the API server would reject (skipped, costing no budget).
    pub invalid: usize,
    /// Points in the space.
    pub space_size: u64,
    pub goal: f64,
}

/// Which of two scores is better for the search: meeting the goal first, then fewer
/// replica-hours; below the goal, higher attainment, then fewer replica-hours.
fn better(a: &Score, b: &Score, goal: f64) -> bool {
    match (a.meets(goal), b.meets(goal)) {
        (true, false) => true,
        (false, true) => false,
        (true, true) => {
            a.replica_hours < b.replica_hours
                || (a.replica_hours == b.replica_hours && a.attainment() > b.attainment())
        }
        (false, false) => {
            a.attainment() > b.attainment()
                || (a.attainment() == b.attainment() && a.replica_hours < b.replica_hours)
        }
    }
}

struct State<'a> {
    space: &'a Space,
    eval: &'a dyn Evaluate,
    options: SearchOptions,
    seen: HashMap<Vec<usize>, Option<usize>>,
    candidates: Vec<Candidate>,
    invalid: usize,
    progress: &'a (dyn Fn(usize, usize) + Sync),
}

impl State<'_> {
    fn left(&self) -> usize {
        self.options.budget.saturating_sub(self.candidates.len())
    }

    /// Validates `points` (skipping seen ones), then evaluates the valid ones, up to the
    /// budget, on the threads. Returns how many were evaluated.
    fn round(&mut self, points: Vec<Vec<usize>>) -> Result<usize> {
        let mut batch = Vec::new();
        for p in points {
            if batch.len() >= self.left() {
                break;
            }
            if self.seen.contains_key(&p) {
                continue;
            }
            let name = format!("candidate-{}", self.candidates.len() + batch.len());
            match self.space.policy(&p, &name)? {
                Some((policy, manifest)) => {
                    self.seen.insert(p.clone(), None);
                    batch.push((p, policy, manifest));
                }
                None => {
                    self.seen.insert(p, None);
                    self.invalid += 1;
                }
            }
        }
        let scores = evaluate_all(
            self.eval,
            &batch,
            self.options.threads,
            self.candidates.len(),
            self.options.budget,
            self.progress,
        )?;
        let n = batch.len();
        for ((point, policy, manifest), score) in batch.into_iter().zip(scores) {
            let index = self.candidates.len();
            self.seen.insert(point.clone(), Some(index));
            self.candidates.push(Candidate {
                index,
                changes: self.space.describe(&point),
                point,
                score,
                manifest,
                policy,
            });
        }
        Ok(n)
    }

    fn best(&self) -> usize {
        let goal = self.eval.goal();
        let mut best = 0;
        for (i, c) in self.candidates.iter().enumerate() {
            if better(&c.score, &self.candidates[best].score, goal) {
                best = i;
            }
        }
        best
    }

    fn random_point(&self, rng: &mut ChaCha8Rng) -> Vec<usize> {
        self.space
            .dims
            .iter()
            .map(|d| rng.random_range(0..d.values.len()))
            .collect()
    }

    /// Up to `want` unseen points from `draw`, giving up after many repeats.
    fn draw_unseen(
        &self,
        want: usize,
        rng: &mut ChaCha8Rng,
        draw: impl Fn(&Self, &mut ChaCha8Rng) -> Vec<usize>,
    ) -> Vec<Vec<usize>> {
        let mut out: Vec<Vec<usize>> = Vec::new();
        for _ in 0..want.saturating_mul(DRAWS_PER_CANDIDATE) {
            if out.len() >= want {
                break;
            }
            let p = draw(self, rng);
            if !self.seen.contains_key(&p) && !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }
}

/// Evaluates `batch` on up to `threads` threads; results in the batch's order.
fn evaluate_all(
    eval: &dyn Evaluate,
    batch: &[(Vec<usize>, Policy, String)],
    threads: usize,
    done_before: usize,
    budget: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<Score>> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(done_before);
    let results: Mutex<Vec<Option<Result<Score>>>> =
        Mutex::new((0..batch.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.min(batch.len()))
            .map(|_| {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((_, policy, _)) = batch.get(i) else {
                            break;
                        };
                        let r = eval.evaluate(policy);
                        let failed = r.is_err();
                        results
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)[i] = Some(r);
                        progress(done.fetch_add(1, Ordering::Relaxed) + 1, budget);
                        if failed {
                            // Stop the others early: the search ends at the first error.
                            next.store(batch.len(), Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            if h.join().is_err() {
                return Err(Error::Panic);
            }
        }
        Ok(())
    })?;
    let results = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // The first error in the batch's order; slots left empty after it were skipped.
    let mut out = Vec::with_capacity(batch.len());
    let mut skipped = false;
    for r in results {
        match r {
            Some(Err(e)) => return Err(e),
            Some(Ok(s)) => out.push(s),
            None => skipped = true,
        }
    }
    if skipped {
        return Err(Error::Panic);
    }
    Ok(out)
}

/// The Pareto front of `candidates`: those no other beats on both replica-hours (lower)
/// and attainment (higher), by replica-hours; equal points keep the earliest.
pub fn pareto_front(candidates: &[Candidate]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&candidates[a].score, &candidates[b].score);
        x.replica_hours
            .total_cmp(&y.replica_hours)
            .then(y.attainment().total_cmp(&x.attainment()))
            .then(a.cmp(&b))
    });
    let mut front = Vec::new();
    let mut best_attainment = f64::NEG_INFINITY;
    for i in order {
        let a = candidates[i].score.attainment();
        if a > best_attainment {
            front.push(i);
            best_attainment = a;
        }
    }
    front
}

/// Searches `space` with `eval`. `progress(done, budget)` is called after each
/// evaluation, from the evaluating thread.
///
/// # Errors
/// Bad options, and the first evaluation error (the seed's first: a seed the simulator
/// cannot run stops the search at once).
pub fn search(
    space: &Space,
    eval: &dyn Evaluate,
    options: SearchOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Outcome> {
    options.check()?;
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut st = State {
        space,
        eval,
        options,
        seen: HashMap::new(),
        candidates: Vec::new(),
        invalid: 0,
        progress,
    };
    // The seed, as written (not as rebuilt from its point: the same policy, but the
    // manifest the user gave).
    let seed_point = space.seed_point();
    let seed_score = eval.evaluate(&space.seed)?;
    progress(1, options.budget);
    st.seen.insert(seed_point.clone(), Some(0));
    st.candidates.push(Candidate {
        index: 0,
        point: seed_point,
        changes: "(the seed)".into(),
        score: seed_score,
        manifest: space.seed_manifest()?,
        policy: space.seed.clone(),
    });
    // A random sample of about half the budget, to see the space's shape.
    let sample = st.draw_unseen(options.budget / 2, &mut rng, State::random_point);
    st.round(sample)?;
    // Coordinate refinement: every knob one notch either way from the best point, until
    // no neighbour is better; then random moves of two knobs from the best.
    while st.left() > 0 {
        let best = st.best();
        let from = st.candidates[best].point.clone();
        let mut neighbours = Vec::new();
        for (d, dim) in space.dims.iter().enumerate() {
            for step in [-1i64, 1] {
                let j = from[d] as i64 + step;
                if (0..dim.values.len() as i64).contains(&j) {
                    let mut p = from.clone();
                    p[d] = j as usize;
                    neighbours.push(p);
                }
            }
        }
        let tried = st.round(neighbours)?;
        if st.best() != best {
            continue;
        }
        let want = st.left().min(options.threads.max(2) * 2);
        let moves = st.draw_unseen(want, &mut rng, |s, rng| {
            let mut p = s.candidates[best].point.clone();
            for _ in 0..2 {
                let d = rng.random_range(0..s.space.dims.len());
                p[d] = rng.random_range(0..s.space.dims[d].values.len());
            }
            p
        });
        let moved = st.round(moves)?;
        if tried == 0 && moved == 0 {
            // Nothing unseen and valid near the best: try anywhere, or stop.
            let anywhere = st.draw_unseen(st.left().min(8), &mut rng, State::random_point);
            if st.round(anywhere)? == 0 {
                break;
            }
        }
    }
    let goal = eval.goal();
    let best = st.best();
    let winner = st.candidates[best].score.meets(goal).then_some(best);
    let front = pareto_front(&st.candidates);
    Ok(Outcome {
        front,
        winner,
        invalid: st.invalid,
        space_size: space.size(),
        goal,
        candidates: st.candidates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::Free;

    /// A stand-in for the simulator: cost grows with maxReplicas and minReplicas,
    /// attainment with minReplicas; deterministic.
    struct Toy;
    impl Evaluate for Toy {
        fn evaluate(&self, policy: &Policy) -> Result<Score> {
            let min = f64::from(podscale_core::defaults::min_replicas(&policy.hpa));
            let max = f64::from(policy.hpa.spec.max_replicas);
            Ok(Score {
                slo_attainment: Some((0.8 + min * 0.03).min(1.0)),
                replica_hours: min * 2.0 + max * 0.1,
            })
        }
        fn goal(&self) -> f64 {
            0.9
        }
    }

    fn run(threads: usize, seed: u64) -> Outcome {
        let space = Space::new(
            &Policy::embedded(),
            Free::parse("min,max").expect("free"),
            10_000,
        )
        .expect("space");
        search(
            &space,
            &Toy,
            SearchOptions {
                budget: 20,
                seed,
                threads,
            },
            &|_, _| {},
        )
        .expect("search")
    }

    #[test]
    fn the_search_finds_the_cheapest_candidate_meeting_the_goal_and_only_valid_ones() {
        let out = run(2, 7);
        let w = &out.candidates[out.winner.expect("a winner")];
        // min 4 is the fewest replicas reaching 0.92 ≥ 0.9; max as low as min allows.
        assert_eq!(podscale_core::defaults::min_replicas(&w.policy.hpa), 4);
        assert!(w.score.meets(0.9));
        assert!(out.candidates.len() <= 20);
        for c in &out.candidates[1..] {
            let docs = podscale_manifest::parse_documents(&c.manifest, "c.yaml").expect("parses");
            assert!(podscale_manifest::validate_hpa(&docs[0], "c.yaml").is_empty());
            assert!(c.policy.hpa.spec.min_replicas <= Some(c.policy.hpa.spec.max_replicas));
        }
        // The front is non-dominated and sorted by cost.
        for pair in out.front.windows(2) {
            let (a, b) = (
                &out.candidates[pair[0]].score,
                &out.candidates[pair[1]].score,
            );
            assert!(a.replica_hours <= b.replica_hours && a.attainment() < b.attainment());
        }
        assert!(out.front.contains(&out.winner.expect("winner")));
    }

    #[test]
    fn the_same_seed_gives_the_same_search_on_any_number_of_threads() {
        let a = run(1, 3);
        let b = run(2, 3);
        let points = |o: &Outcome| {
            o.candidates
                .iter()
                .map(|c| c.point.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(points(&a), points(&b));
        assert_eq!(a.winner, b.winner);
        assert_ne!(points(&a), points(&run(2, 4)));
    }

    #[test]
    fn a_budget_past_the_limit_is_refused() {
        let o = SearchOptions {
            budget: MAX_BUDGET + 1,
            seed: 1,
            threads: 2,
        };
        assert!(
            o.check()
                .expect_err("too big")
                .to_string()
                .contains("limit of 5000")
        );
    }
}
