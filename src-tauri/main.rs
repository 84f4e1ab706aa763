//! The Idlegrid desktop app (tray, window, earnings). Until the app is built (its own issue), this binary
//! only proves the shell links the engine: it reports which GPUs the engine would share.

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let report = idlegrid::probe();
    for adapter in &report.adapters {
        tracing::info!(name = %adapter.name, backend = %adapter.backend, "GPU the engine can use");
    }
    println!(
        "The Idlegrid desktop app is not built yet; the engine sees {} GPU adapter(s). Use the `idlegrid` command.",
        report.adapters.len()
    );
    Ok(())
}
