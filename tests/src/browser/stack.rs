//! The stack a console test runs against, in one call: the pipeline (API,
//! worker, Cloud Tasks stand-in, receiver; see `crate::pipeline`) and a
//! chromedriver to open browser profiles on.

use crate::pipeline::{Pipeline, PipelineOptions, spawn_pipeline_with};

use super::{Browser, Profile};

pub struct ConsoleStack {
    // Declared first: the browsers stop before the services they talk to.
    pub browser: Browser,
    pub pipeline: Pipeline,
}

impl ConsoleStack {
    /// The stack for test `test` (which names its screenshot directory).
    pub async fn start(test: &str) -> Self {
        Self::start_with(test, PipelineOptions::default()).await
    }

    /// [`ConsoleStack::start`] with the pipeline's options.
    pub async fn start_with(test: &str, options: PipelineOptions) -> Self {
        let browser = Browser::start(test);
        let pipeline = spawn_pipeline_with(options).await;
        Self { browser, pipeline }
    }

    /// A new browser profile (another user: see [`Browser::profile`]).
    pub async fn profile(&self, name: &str) -> Profile {
        self.browser.profile(name).await
    }

    /// The API's base URL, e.g. `http://127.0.0.1:40123`.
    pub fn base_url(&self) -> &str {
        &self.pipeline.app.base_url
    }

    /// The console at `route` (`""`, `"#/discover"`, …): `<base>/console/<route>`.
    pub fn console_url(&self, route: &str) -> String {
        self.pipeline.app.url(&format!("/console/{route}"))
    }
}
