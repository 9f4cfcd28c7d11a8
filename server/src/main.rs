//! `server`: the bookstore's web server. Configuration: `server --help`.

use clap::Parser;
use server::config::Config;
use server::startup::Application;

/// mimalloc rather than glibc's malloc, as in the services (`services/src/main.rs`):
/// a checkout allocates and frees many small buffers (JSON, HTTP/2 frames,
/// protobuf for each of its calls).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = dotenvy::dotenv();
    let config = Config::parse();
    let telemetry = platform::telemetry::init("web")?;
    let app = Application::build(config).await?;
    app.metrics().register_collector(platform::metrics::ProcessMetrics::new());
    if let Some(exports) = telemetry.export_metrics() {
        exports.register(app.metrics());
    }
    tracing::info!(addr = %app.local_addr()?, "web server listening");
    app.run_until(platform::grpc::shutdown_signal()).await?;
    tracing::info!("stopped");
    drop(telemetry);
    Ok(())
}
