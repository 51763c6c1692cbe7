//! The search's promise, on the real simulator: whatever the seed manifest, the search
//! seed and the free knobs, the winner is a manifest the API server accepts, and
//! replaying it on the traffic searched meets the goal with the replica-hours reported.
use podscale_sim::{Model, Policy, SimConfig, Slo, Traffic, TrafficOptions, TrafficSpec};
use podscale_tune::{Evaluate as _, Free, SearchOptions, SimEvaluator, Space, search};

fn manifest(name: &str) -> Policy {
    let path = format!(
        "{}/../../examples/manifests/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    Policy::load(&path).expect("loads").remove(0)
}

#[test]
fn the_winner_always_validates_and_meets_the_goal_on_the_traffic_searched() {
    // A step in load: a policy must scale up in time, and pays for staying up.
    let traffic = Traffic::prepare(
        &TrafficSpec::Pattern("step:from=1,to=5,at=10m".into()),
        TrafficOptions {
            duration: Some(1800.0),
            ..TrafficOptions::default()
        },
    )
    .expect("traffic");
    let cfg = SimConfig {
        slo: Slo::parse("ttft=2s,e2e=30s,goal=98%").expect("slo"),
        ..SimConfig::new(Model::default_model())
    };
    let eval = SimEvaluator::new(traffic, cfg).expect("oracle");
    let mut winners = 0;
    for file in ["inference-hpa-resource.yaml", "inference-hpa-custom.yaml"] {
        let seed = manifest(file);
        for free in ["all", "targets,min", "windows,policies,max"] {
            let space = Space::new(&seed, Free::parse(free).expect("free"), 1000).expect("space");
            for search_seed in [1, 2] {
                let out = search(
                    &space,
                    &eval,
                    SearchOptions {
                        budget: 10,
                        seed: search_seed,
                        threads: 2,
                    },
                    &|_, _| {},
                )
                .expect("search");
                assert!(out.candidates.len() <= 10);
                let Some(w) = out.winner else {
                    // No winner is an allowed answer; a wrong winner is not.
                    continue;
                };
                winners += 1;
                let w = &out.candidates[w];
                let docs =
                    podscale_manifest::parse_documents(&w.manifest, "w.yaml").expect("parses");
                let problems = podscale_manifest::validate_hpa(&docs[0], "w.yaml");
                assert!(problems.is_empty(), "{file} {free}: {problems:?}");
                let replayed = Policy::from_source(&w.manifest, "w.yaml")
                    .expect("valid")
                    .remove(0);
                let score = eval.evaluate(&replayed).expect("runs");
                assert_eq!(score, w.score, "{file} {free}: the replay is the same run");
                assert!(score.meets(0.98), "{file} {free}: {score:?}");
                // Nothing on the front meeting the goal is cheaper than the winner.
                for &i in &out.front {
                    let c = &out.candidates[i].score;
                    assert!(!c.meets(0.98) || c.replica_hours >= score.replica_hours);
                }
            }
        }
    }
    assert!(winners >= 6, "most searches find a winner: {winners} of 12");
}
