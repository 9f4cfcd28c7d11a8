//! `server`: the bookstore's web server. Configuration: `server --help`.

use clap::Parser;
use server::config::Config;
use server::startup::Application;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = dotenvy::dotenv();
    platform::telemetry::init();
    let app = Application::build(Config::parse()).await?;
    tracing::info!(addr = %app.local_addr()?, "web server listening");
    app.run_until(platform::grpc::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
