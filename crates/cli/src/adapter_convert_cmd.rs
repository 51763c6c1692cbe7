//! `podscale adapter convert FILE [--prometheus URL]`: a prometheus-adapter config
//! (the file itself, or the ConfigMap holding it) becomes the equivalent
//! `podscale.yaml` on standard output; what cannot be translated is listed on standard
//! error with its `file:line:col`, and at the top of the output as comments.
//!
//! With `--prometheus`, each rule's `seriesQuery` is listed there (`/api/v1/series`,
//! the last 10 minutes, as the adapter's discovery does), so rules that match a family
//! of series (the Helm chart's defaults) become one metric per name found; without it,
//! only rules whose `seriesQuery` names its series convert.
use std::path::Path;

use anyhow::{Context as _, Result};
use clap::ValueEnum;
use podscale_metrics::config::{Config, PrometheusConfig};
use podscale_metrics::prom_adapter::{self, AdapterConfig, Conversion, SeriesInfo, Severity};
use podscale_metrics::prometheus::PrometheusClient;

/// Output format of `adapter convert`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `podscale.yaml`, with each metric's origin and what was not translated as
    /// comments.
    #[default]
    Yaml,
    /// The same config as JSON (every setting written out).
    Json,
}

pub fn run(file: &Path, prometheus: Option<&str>, output: Format) -> Result<()> {
    let adapter = AdapterConfig::load(file)?;
    let series = match prometheus {
        Some(url) => Some(discover(&adapter, url)?),
        None => None,
    };
    let mut conversion = prom_adapter::convert(&adapter, series.as_deref());
    if let Some(url) = prometheus
        && conversion.set_prometheus_url(url)
    {
        eprintln!(
            "note: the credentials and query of --prometheus are not written to the output: set prometheus.basicAuth or bearerTokenFile"
        );
    }
    let text = render(&conversion, output)?;
    print!("{text}");
    report(&conversion, prometheus.is_some());
    Ok(())
}

/// Lists the series of the config's rules on the server at `url`.
fn discover(adapter: &AdapterConfig, url: &str) -> Result<Vec<SeriesInfo>> {
    podscale_metrics::http::install_crypto_provider();
    let client = PrometheusClient::new(&PrometheusConfig::new(url))
        .context("--prometheus: cannot set up the client")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(prom_adapter::discover(
        &client,
        adapter,
        prom_adapter::DISCOVERY_LOOKBACK,
    ))?)
}

/// The output text, checked to be a `podscale.yaml` the config reader accepts.
fn render(conversion: &Conversion, output: Format) -> Result<String> {
    let text = match output {
        Format::Yaml => conversion.to_yaml(),
        Format::Json => {
            let mut t = serde_json::to_string_pretty(&conversion.config)
                .context("cannot write the config as JSON")?;
            t.push('\n');
            t
        }
    };
    // A conversion that the reader refuses is a bug here, not the user's: say so
    // rather than print a file that fails later.
    Config::from_source(&text, "the converted podscale.yaml").map_err(|e| {
        anyhow::anyhow!("internal error: the converted config does not load (please report):\n{e}")
    })?;
    Ok(text)
}

/// What was not translated (and the notes), then a one-line summary, on standard error.
fn report(conversion: &Conversion, discovered: bool) {
    for note in &conversion.notes {
        eprintln!("{note}");
    }
    let skipped = conversion
        .notes
        .iter()
        .filter(|n| n.severity == Severity::NotTranslated)
        .count();
    let mut summary = format!(
        "{}: {} metric{} converted",
        conversion.file,
        conversion.config.metrics.len(),
        if conversion.config.metrics.len() == 1 {
            ""
        } else {
            "s"
        }
    );
    if skipped > 0 {
        summary.push_str(&format!(
            "; {skipped} item(s) not translated (listed above)"
        ));
        if !discovered
            && conversion
                .notes
                .iter()
                .any(|n| n.diagnostic.message.contains("--prometheus"))
        {
            summary.push_str("; rerun with --prometheus URL to discover the series of broad rules");
        }
    }
    if conversion
        .config
        .prometheus
        .as_ref()
        .map(|p| p.url.as_str())
        == Some(prom_adapter::DEFAULT_PROMETHEUS_URL)
    {
        summary.push_str(&format!(
            "; prometheus.url is the Helm chart's default ({}): set yours",
            prom_adapter::DEFAULT_PROMETHEUS_URL
        ));
    }
    eprintln!("{summary}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversion(src: &str) -> Conversion {
        let adapter = AdapterConfig::from_source(src, "adapter.yaml").expect("parses");
        prom_adapter::convert(&adapter, None)
    }

    const RULE: &str = r#"rules:
- seriesQuery: 'vllm:num_requests_waiting{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {as: queue}
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)
"#;

    #[test]
    fn both_formats_load_as_the_same_config() {
        let c = conversion(RULE);
        let yaml = render(&c, Format::Yaml).expect("yaml");
        let json = render(&c, Format::Json).expect("json");
        let from_yaml = Config::from_source(&yaml, "y").expect("loads");
        let from_json = Config::from_source(&json, "j").expect("loads");
        assert_eq!(from_yaml.metrics, from_json.metrics);
        assert_eq!(from_yaml.metrics[0].name, "queue");
        assert!(
            yaml.contains("# rules[0] (adapter.yaml:2:3): series vllm:num_requests_waiting"),
            "{yaml}"
        );
    }

    #[test]
    fn a_missing_file_is_a_clear_error() {
        let e = run(
            Path::new("/nonexistent/adapter-config.yaml"),
            None,
            Format::Yaml,
        )
        .expect_err("missing");
        assert_eq!(
            e.to_string(),
            "cannot read /nonexistent/adapter-config.yaml"
        );
    }
}
