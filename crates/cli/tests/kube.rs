//! Black-box tests of the Kubernetes subcommands that need no cluster: `crd`,
//! `convert`, and the clear errors of `run`/`get` without one.
use std::process::{Command, Output};

fn podscale(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podscale"))
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn crd_prints_the_checked_in_definition() {
    let out = podscale(&["crd"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let checked_in = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/crd.yaml"
    ))
    .expect("deploy/crd.yaml");
    assert_eq!(text(&out.stdout), checked_in);
}

#[test]
fn convert_turns_a_seed_hpa_into_an_autoscaler() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/manifests/inference-hpa-custom.yaml"
    );
    let out = podscale(&["convert", file]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("apiVersion: podscale.dev/v1alpha1\nkind: Autoscaler\n"),
        "{stdout}"
    );
    assert!(stdout.contains("name: inference-server-hpa"), "{stdout}");
}

#[test]
fn convert_refuses_a_file_without_an_hpa() {
    let dir = std::env::temp_dir().join(format!("podscale-convert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let f = dir.join("svc.yaml");
    std::fs::write(&f, "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n").expect("write");
    let out = podscale(&["convert", f.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no autoscaling/v2 HorizontalPodAutoscaler found"),
        "{stderr}"
    );
    assert!(stderr.contains("skipped Service/s"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn get_and_run_name_a_missing_kubeconfig() {
    for args in [
        &[
            "get",
            "autoscalers",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
        ][..],
        &[
            "run",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
            "--metrics-addr",
            "off",
        ][..],
    ] {
        let out = podscale(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("kubeconfig /nonexistent/kubeconfig"),
            "{stderr}"
        );
    }
}

#[test]
fn get_refuses_other_resource_types() {
    let out = podscale(&["get", "pods"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("podscale gets autoscalers (psa)"),
        "{stderr}"
    );
}
