//! The middleware's own metrics on the operator's `/metrics`: one metrics system.
//!
//! The `clientcreds` middleware records through the [`metrics`] facade (token requests by result
//! and their durations, named and documented once in `clientcreds::telemetry` and
//! [`clientcreds::TOKEN_REQUESTS`]). The operator exposes `prometheus-client` metrics. This
//! module is a [`metrics::Recorder`] that turns every facade counter, gauge and histogram into a
//! `prometheus-client` family of the same name and labels, in a registry of its own that
//! [`crate::telemetry::Metrics::encode`] writes after the operator's own metrics. The facade
//! allows one recorder per process, so the bridge is process-wide: [`install`] it once (the
//! operator's [`crate::run::run`] does).
//!
//! ```
//! use clientcreds_operator::metrics_bridge::Bridge;
//! let bridge = Bridge::default();
//! metrics::with_local_recorder(&bridge, || {
//!     metrics::counter!("clientcreds_token_requests_total", "result" => "success").increment(2);
//! });
//! let mut text = String::new();
//! bridge.encode(&mut text).unwrap();
//! assert!(text.contains(r#"clientcreds_token_requests_total{result="success"} 2"#));
//! ```

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use prometheus_client::encoding::text::encode_registry;
use prometheus_client::metrics::counter::Counter as PromCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge as PromGauge;
use prometheus_client::metrics::histogram::{Histogram as PromHistogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;
type HistogramFamily = Family<Labels, PromHistogram, fn() -> PromHistogram>;

/// The buckets of every bridged histogram: 5 ms to about 41 s, doubling.
fn histogram() -> PromHistogram {
    PromHistogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// A [`metrics::Recorder`] that keeps what is recorded through the facade as `prometheus-client`
/// metrics. Labels are taken as they are: the middleware never puts a secret in one.
#[derive(Default)]
pub struct Bridge {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    registry: Registry,
    descriptions: HashMap<String, String>,
    counters: HashMap<String, Family<Labels, PromCounter>>,
    gauges: HashMap<String, Family<Labels, PromGauge<f64, AtomicU64>>>,
    histograms: HashMap<String, HistogramFamily>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge").finish_non_exhaustive()
    }
}

impl Bridge {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Writes the bridged metrics in the text exposition format (without the final `# EOF`).
    pub fn encode(&self, out: &mut String) -> std::fmt::Result {
        encode_registry(out, &self.lock().registry)
    }
}

impl Inner {
    fn help(&self, name: &str) -> String {
        self.descriptions
            .get(name)
            .cloned()
            .unwrap_or_else(|| format!("{name}, recorded by the clientcreds middleware"))
    }
}

fn labels(key: &Key) -> Labels {
    key.labels()
        .map(|l| (l.key().to_owned(), l.value().to_owned()))
        .collect()
}

impl Recorder for Bridge {
    fn describe_counter(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        self.lock()
            .descriptions
            // prometheus-client ends every help text with a period itself
            .insert(
                key.as_str().to_owned(),
                description.trim_end_matches('.').to_owned(),
            );
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe_counter(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe_counter(key, unit, description);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut inner = self.lock();
        let name = key.name().to_owned();
        let family = match inner.counters.get(&name) {
            Some(f) => f.clone(),
            None => {
                let family = Family::<Labels, PromCounter>::default();
                let help = inner.help(&name);
                // prometheus-client adds the `_total` suffix of counters itself
                let base = name.strip_suffix("_total").unwrap_or(&name);
                inner.registry.register(base, help, family.clone());
                inner.counters.insert(name, family.clone());
                family
            }
        };
        let counter = family.get_or_create(&labels(key)).clone();
        Counter::from_arc(Arc::new(BridgedCounter(counter)))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let mut inner = self.lock();
        let name = key.name().to_owned();
        let family = match inner.gauges.get(&name) {
            Some(f) => f.clone(),
            None => {
                let family = Family::<Labels, PromGauge<f64, AtomicU64>>::default();
                let help = inner.help(&name);
                inner.registry.register(&name, help, family.clone());
                inner.gauges.insert(name, family.clone());
                family
            }
        };
        let gauge = family.get_or_create(&labels(key)).clone();
        Gauge::from_arc(Arc::new(BridgedGauge(gauge)))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut inner = self.lock();
        let name = key.name().to_owned();
        let family = match inner.histograms.get(&name) {
            Some(f) => f.clone(),
            None => {
                let family: HistogramFamily = Family::new_with_constructor(histogram);
                let help = inner.help(&name);
                inner.registry.register(&name, help, family.clone());
                inner.histograms.insert(name, family.clone());
                family
            }
        };
        let histogram = family.get_or_create(&labels(key)).clone();
        Histogram::from_arc(Arc::new(BridgedHistogram(histogram)))
    }
}

struct BridgedCounter(PromCounter);

impl CounterFn for BridgedCounter {
    fn increment(&self, value: u64) {
        self.0.inc_by(value);
    }

    fn absolute(&self, value: u64) {
        // a Prometheus counter only goes up
        let now = self.0.get();
        if value > now {
            self.0.inc_by(value - now);
        }
    }
}

struct BridgedGauge(PromGauge<f64, AtomicU64>);

impl GaugeFn for BridgedGauge {
    fn increment(&self, value: f64) {
        self.0.inc_by(value);
    }

    fn decrement(&self, value: f64) {
        self.0.dec_by(value);
    }

    fn set(&self, value: f64) {
        self.0.set(value);
    }
}

struct BridgedHistogram(PromHistogram);

impl HistogramFn for BridgedHistogram {
    fn record(&self, value: f64) {
        self.0.observe(value);
    }
}

/// The process's bridge: what [`install`] makes the facade's global recorder.
static PROCESS_BRIDGE: LazyLock<Bridge> = LazyLock::new(Bridge::default);

/// Makes the process-wide [`Bridge`] the `metrics` facade's global recorder. Returns `false`
/// when another recorder was installed first (then the middleware's metrics go there, not to
/// `/metrics`); calling it again is harmless.
pub fn install() -> bool {
    static INSTALLED: LazyLock<bool> =
        LazyLock::new(|| metrics::set_global_recorder(&*PROCESS_BRIDGE).is_ok());
    *INSTALLED
}

/// Writes the process-wide bridge's metrics (empty until [`install`] and the first recording).
pub fn encode(out: &mut String) -> std::fmt::Result {
    PROCESS_BRIDGE.encode(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gauges_and_histograms_keep_their_names_labels_and_help() {
        let bridge = Bridge::default();
        metrics::with_local_recorder(&bridge, || {
            metrics::describe_counter!("clientcreds_token_requests_total", "Token requests.");
            metrics::counter!("clientcreds_token_requests_total", "result" => "success")
                .increment(3);
            metrics::counter!("clientcreds_token_requests_total", "result" => "invalid_client")
                .increment(1);
            metrics::counter!("clientcreds_token_requests_total", "result" => "success")
                .absolute(5);
            metrics::gauge!("clientcreds_test_gauge").set(2.5);
            metrics::histogram!("clientcreds_token_request_duration_seconds", "result" => "success")
                .record(0.012);
        });
        let mut text = String::new();
        bridge.encode(&mut text).unwrap();
        assert!(
            text.contains("# HELP clientcreds_token_requests Token requests."),
            "{text}"
        );
        assert!(
            text.contains(r#"clientcreds_token_requests_total{result="success"} 5"#),
            "{text}"
        );
        assert!(
            text.contains(r#"clientcreds_token_requests_total{result="invalid_client"} 1"#),
            "{text}"
        );
        assert!(text.contains("clientcreds_test_gauge{} 2.5"), "{text}");
        assert!(
            text.contains(
                r#"clientcreds_token_request_duration_seconds_count{result="success"} 1"#
            ),
            "{text}"
        );
        assert!(!text.contains("_total_total"), "{text}");
    }
}
