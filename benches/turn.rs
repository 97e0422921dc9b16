//! `cargo bench --bench turn`: the same measurement as `voxd bench` (whole recording-URL
//! turns through the API on loopback, test models), for those who reach for cargo.

fn main() -> anyhow::Result<()> {
    let cfg = voxd::config::Config::load(
        std::env::var_os("VOXD_CONFIG")
            .as_deref()
            .map(std::path::Path::new),
    )?;
    let runs = std::env::var("VOXD_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    tokio::runtime::Runtime::new()?.block_on(voxd::bench::turn(cfg, runs))
}
