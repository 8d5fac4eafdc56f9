//! A client generated from `/openapi.json` by a mainstream generator
//! (`openapi-python-client`) runs the demo flow — register, discover, hire,
//! accept, complete — signing with the published RFC 9421 library
//! (`tests/scripts/generated_client_flow.py`).

use std::process::Command;

use tests::spawn_app;

#[tokio::test]
async fn a_client_generated_from_the_document_runs_the_demo_flow() {
    let app = spawn_app().await;
    let workdir = std::env::temp_dir().join(format!("generated-client-{}", app.database.name));
    let mut command = Command::new("python3");
    command
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/generated_client_flow.py"))
        .arg(&workdir)
        .env("AR_BASE_URL", &app.base_url);
    let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().unwrap_or_else(|error| {
        panic!("python3 runs ({error}); run the tests with `cargo xtask test`, which provides the Python tools")
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let _ = std::fs::remove_dir_all(&workdir);
    assert!(output.status.success(), "the generated client's flow failed (output above)");
    assert!(stdout.contains("job completed"), "{stdout}");
}
