//! A minimal metrics registry: families of counters, gauges and histograms keyed by label
//! values, written in the Prometheus text exposition format (version 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// One time series of a family: how it is created and written out.
pub trait Series {
    /// The `# TYPE` name.
    const KIND: &'static str;
    fn new(buckets: &[f64]) -> Self;
    /// Appends the series' sample lines; `labels` is `k="v",…` (maybe empty).
    fn write(&self, name: &str, labels: &str, buckets: &[f64], out: &mut String);
}

/// A monotonically increasing count.
pub struct Counter(u64);

/// A value that goes up and down.
pub struct Gauge(f64);

/// Observations counted into cumulative buckets, with their sum and count.
pub struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Series for Counter {
    const KIND: &'static str = "counter";
    fn new(_: &[f64]) -> Self {
        Counter(0)
    }

    fn write(&self, name: &str, labels: &str, _: &[f64], out: &mut String) {
        sample(out, name, "", labels, self.0 as f64);
    }
}

impl Series for Gauge {
    const KIND: &'static str = "gauge";
    fn new(_: &[f64]) -> Self {
        Gauge(0.0)
    }

    fn write(&self, name: &str, labels: &str, _: &[f64], out: &mut String) {
        sample(out, name, "", labels, self.0);
    }
}

impl Series for Histogram {
    const KIND: &'static str = "histogram";
    fn new(buckets: &[f64]) -> Self {
        Histogram {
            counts: vec![0; buckets.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn write(&self, name: &str, labels: &str, buckets: &[f64], out: &mut String) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (le, n) in buckets.iter().zip(&self.counts) {
            let l = format!("{labels}{sep}le=\"{le}\"");
            sample(out, name, "_bucket", &l, *n as f64);
        }
        let l = format!("{labels}{sep}le=\"+Inf\"");
        sample(out, name, "_bucket", &l, self.count as f64);
        sample(out, name, "_sum", labels, self.sum);
        sample(out, name, "_count", labels, self.count as f64);
    }
}

fn sample(out: &mut String, name: &str, suffix: &str, labels: &str, value: f64) {
    let value = number(value);
    if labels.is_empty() {
        let _ = writeln!(out, "{name}{suffix} {value}");
    } else {
        let _ = writeln!(out, "{name}{suffix}{{{labels}}} {value}");
    }
}

/// A sample value as the text format writes it: Rust prints infinity as `inf`, Prometheus
/// reads `+Inf`, `-Inf` and `NaN`.
fn number(v: f64) -> String {
    match v {
        f64::INFINITY => "+Inf".into(),
        f64::NEG_INFINITY => "-Inf".into(),
        v if v.is_nan() => "NaN".into(),
        v => v.to_string(),
    }
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A named metric with fixed label names and one series per combination of label values.
pub struct Family<S> {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    buckets: &'static [f64],
    series: Mutex<BTreeMap<Vec<String>, S>>,
}

impl<S: Series> Family<S> {
    pub fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Self::with_buckets(name, help, labels, &[])
    }

    pub fn with_buckets(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        buckets: &'static [f64],
    ) -> Self {
        Self {
            name,
            help,
            labels,
            buckets,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    /// Runs `f` on the series for `values` (one per label name), created if new.
    fn update(&self, values: &[&str], f: impl FnOnce(&mut S)) {
        debug_assert_eq!(values.len(), self.labels.len(), "{}", self.name);
        let key = values.iter().map(|v| v.to_string()).collect();
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        f(series.entry(key).or_insert_with(|| S::new(self.buckets)));
    }

    /// Creates the series for `values` (at zero) so it is exported before it first moves.
    pub fn declare(&self, values: &[&str]) {
        self.update(values, |_| {});
    }

    /// Appends `# HELP`, `# TYPE` and every series.
    pub fn encode(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, S::KIND);
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        for (values, s) in series.iter() {
            let labels = self
                .labels
                .iter()
                .zip(values)
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect::<Vec<_>>()
                .join(",");
            s.write(self.name, &labels, self.buckets, out);
        }
    }
}

impl Family<Counter> {
    pub fn inc(&self, values: &[&str]) {
        self.update(values, |c| c.0 += 1);
    }
}

impl Family<Gauge> {
    pub fn set(&self, values: &[&str], v: f64) {
        self.update(values, |g| g.0 = v);
    }
}

impl Family<Histogram> {
    /// Records one observation (seconds, for latencies).
    pub fn observe(&self, values: &[&str], v: f64) {
        self.update(values, |h| {
            for (le, n) in self.buckets.iter().zip(h.counts.iter_mut()) {
                if v <= *le {
                    *n += 1;
                }
            }
            h.sum += v;
            h.count += 1;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_of_each_kind() {
        let c: Family<Counter> = Family::new("t_total", "A count.", &["kind"]);
        c.inc(&["a\"b"]);
        c.inc(&["a\"b"]);
        let g: Family<Gauge> = Family::new("t_gauge", "A level.", &[]);
        g.set(&[], 1.5);
        let h: Family<Histogram> =
            Family::with_buckets("t_seconds", "A latency.", &["stage"], &[0.1, 1.0]);
        h.observe(&["stt"], 0.5);
        h.observe(&["stt"], 0.05);
        let mut out = String::new();
        c.encode(&mut out);
        g.encode(&mut out);
        h.encode(&mut out);
        assert_eq!(
            out,
            "# HELP t_total A count.\n# TYPE t_total counter\nt_total{kind=\"a\\\"b\"} 2\n\
             # HELP t_gauge A level.\n# TYPE t_gauge gauge\nt_gauge 1.5\n\
             # HELP t_seconds A latency.\n# TYPE t_seconds histogram\n\
             t_seconds_bucket{stage=\"stt\",le=\"0.1\"} 1\n\
             t_seconds_bucket{stage=\"stt\",le=\"1\"} 2\n\
             t_seconds_bucket{stage=\"stt\",le=\"+Inf\"} 2\n\
             t_seconds_sum{stage=\"stt\"} 0.55\nt_seconds_count{stage=\"stt\"} 2\n"
        );
    }

    #[test]
    fn infinite_and_missing_values_are_written_as_prometheus_reads_them() {
        let g: Family<Gauge> = Family::new("t_level", "A level.", &["side"]);
        g.set(&["up"], f64::INFINITY);
        g.set(&["down"], f64::NEG_INFINITY);
        g.set(&["none"], f64::NAN);
        let mut out = String::new();
        g.encode(&mut out);
        for line in [
            "t_level{side=\"up\"} +Inf",
            "t_level{side=\"down\"} -Inf",
            "t_level{side=\"none\"} NaN",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} not in {out}");
        }
    }
}
