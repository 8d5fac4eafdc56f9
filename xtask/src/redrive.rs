//! `cargo xtask redrive --agent agt_… --since <RFC 3339 time>`: an operator
//! sends again every delivery to one agent's endpoint that died since a time
//! (see `shared::redrive`). It only needs the database (`DATABASE_URL` from
//! the environment, else from `.env`): the API's relay picks the deliveries
//! up. `--dry-run` counts them and changes nothing.

use anyhow::Context;
use secrecy::ExposeSecret;
use shared::domain::AgentId;
use sqlx::postgres::PgPoolOptions;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::runner::Runner;

const USAGE: &str = "usage: cargo xtask redrive --agent agt_… --since 2026-11-25T08:00:00Z [--dry-run]";

#[derive(Debug, PartialEq, Eq)]
struct Args {
    agent: AgentId,
    since: OffsetDateTime,
}

fn parse(args: &[String]) -> anyhow::Result<Args> {
    let (mut agent, mut since) = (None, None);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--agent" => agent = Some(value()?.parse().map_err(|e| anyhow::anyhow!("--agent {e}\n{USAGE}"))?),
            "--since" => {
                let value = value()?;
                let time = OffsetDateTime::parse(value, &Rfc3339)
                    .with_context(|| format!("--since must be an RFC 3339 time, got {value:?}\n{USAGE}"))?;
                since = Some(time);
            }
            other => anyhow::bail!("unexpected argument {other:?}\n{USAGE}"),
        }
    }
    Ok(Args {
        agent: agent.with_context(|| format!("--agent is required\n{USAGE}"))?,
        since: since.with_context(|| format!("--since is required\n{USAGE}"))?,
    })
}

pub fn run(runner: &Runner, args: &[String]) -> anyhow::Result<()> {
    let Args { agent, since } = parse(args)?;
    let database_url = match std::env::var("DATABASE_URL") {
        Ok(url) => url,
        Err(_) => crate::dev::local_settings(runner)?.database_url()?.expose_secret().to_owned(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let count = runtime.block_on(async {
        let db = PgPoolOptions::new()
            .max_connections(1)
            .connect(&database_url)
            .await
            .context("cannot connect to the database in DATABASE_URL")?;
        anyhow::Ok(shared::redrive::redrive(&db, agent, since, runner.dry_run).await?)
    })?;
    let since = since.format(&Rfc3339)?;
    if runner.dry_run {
        println!("{count} deliveries to {agent}'s endpoint dead since {since} would be sent again");
    } else {
        println!("{count} deliveries to {agent}'s endpoint dead since {since} queued again");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn reads_an_agent_and_a_time() {
        let agent = AgentId::generate();
        let parsed = parse(&args(&["--agent", &agent.to_string(), "--since", "2026-11-25T08:00:00Z"])).unwrap();
        assert_eq!(parsed.agent, agent);
        assert_eq!(parsed.since.unix_timestamp(), 1_795_593_600);
    }

    #[test]
    fn says_what_is_wrong() {
        let agent = AgentId::generate().to_string();
        let missing = parse(&args(&["--agent", &agent])).unwrap_err().to_string();
        assert!(missing.contains("--since is required"), "{missing}");
        let malformed = parse(&args(&["--agent", &agent, "--since", "yesterday"])).unwrap_err().to_string();
        assert!(malformed.contains("RFC 3339"), "{malformed}");
        let not_an_agent = parse(&args(&["--agent", "cli_1", "--since", "2026-11-25T08:00:00Z"])).unwrap_err();
        assert!(not_an_agent.to_string().starts_with("--agent"), "{not_an_agent}");
        let dangling = parse(&args(&["--agent"])).unwrap_err().to_string();
        assert!(dangling.contains("--agent needs a value"), "{dangling}");
    }
}
