//! The web console in headless Chromium (`tests::browser`): a test binary
//! of its own, since it needs Chromium and chromedriver (and axe-core, which
//! `cargo xtask test` provides).

mod flow;
mod harness;
mod pages;
