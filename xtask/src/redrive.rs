//! `cargo xtask redrive --agent agt_… --since <RFC 3339 time>` (or `--client
//! cli_…`): an operator sends again every delivery to one agent's endpoint
//! (or one client's callbacks) that died since a time (see
//! `shared::redrive`). It only needs the database (`DATABASE_URL` from the
//! environment, else from `.env`): the API's relay picks the deliveries up.
//! `--dry-run` counts them and changes nothing.

use anyhow::Context;
use secrecy::ExposeSecret;
use shared::redrive::{Recipient, Redrive};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::runner::Runner;

const USAGE: &str =
    "usage: cargo xtask redrive (--agent agt_… | --client cli_…) --since 2026-11-25T08:00:00Z [--dry-run]";

/// Deliveries queued per statement, so no statement holds many rows.
const BATCH: u32 = 1_000;

#[derive(Debug, PartialEq, Eq)]
struct Args {
    recipient: Recipient,
    since: OffsetDateTime,
}

fn parse(args: &[String]) -> anyhow::Result<Args> {
    let (mut recipient, mut since) = (None, None);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value\n{USAGE}"));
        let named = match arg.as_str() {
            "--agent" => Recipient::Agent(value()?.parse().map_err(|e| anyhow::anyhow!("--agent {e}\n{USAGE}"))?),
            "--client" => Recipient::Client(value()?.parse().map_err(|e| anyhow::anyhow!("--client {e}\n{USAGE}"))?),
            "--since" => {
                let value = value()?;
                let time = OffsetDateTime::parse(value, &Rfc3339)
                    .with_context(|| format!("--since must be an RFC 3339 time, got {value:?}\n{USAGE}"))?;
                since = Some(time);
                continue;
            }
            other => anyhow::bail!("unexpected argument {other:?}\n{USAGE}"),
        };
        anyhow::ensure!(recipient.replace(named).is_none(), "name one --agent or --client\n{USAGE}");
    }
    Ok(Args {
        recipient: recipient.with_context(|| format!("--agent or --client is required\n{USAGE}"))?,
        since: since.with_context(|| format!("--since is required\n{USAGE}"))?,
    })
}

pub fn run(runner: &Runner, args: &[String]) -> anyhow::Result<()> {
    let Args { recipient, since } = parse(args)?;
    let database_url = match std::env::var("DATABASE_URL") {
        Ok(url) => url,
        Err(_) => crate::local::local_settings(runner)?.database_url()?.expose_secret().to_owned(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let count = runtime.block_on(async {
        let db = PgPoolOptions::new()
            .max_connections(1)
            .connect(&database_url)
            .await
            .context("cannot connect to the database in DATABASE_URL")?;
        redrive_all(&db, recipient, since, runner.dry_run).await
    })?;
    let whose = match recipient {
        Recipient::Agent(agent) => format!("{agent}'s endpoint"),
        Recipient::Client(client) => format!("{client}'s callbacks"),
    };
    let since = since.format(&Rfc3339)?;
    if runner.dry_run {
        println!("{count} deliveries to {whose} dead since {since} would be sent again");
    } else {
        println!("{count} deliveries to {whose} dead since {since} queued again");
    }
    Ok(())
}

/// Every delivery that died from `since` until now, in batches; one that
/// dies again meanwhile is not taken twice.
async fn redrive_all(db: &PgPool, recipient: Recipient, since: OffsetDateTime, dry_run: bool) -> anyhow::Result<u64> {
    let until = Some(OffsetDateTime::now_utc());
    if dry_run {
        let every = Redrive { recipient, since, until, limit: u32::MAX };
        return Ok(shared::redrive::redrive(&mut *db.acquire().await?, every, None, true).await?.queued);
    }
    let batch = Redrive { recipient, since, until, limit: BATCH };
    let mut queued = 0;
    let mut db = db.acquire().await?;
    loop {
        let redriven = shared::redrive::redrive(&mut db, batch, None, false).await?;
        queued += redriven.queued;
        if !redriven.more {
            return Ok(queued);
        }
    }
}

#[cfg(test)]
mod tests {
    use shared::domain::{AgentId, ClientId};

    use super::*;

    fn args(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn reads_a_recipient_and_a_time() {
        let agent = AgentId::generate();
        let parsed = parse(&args(&["--agent", &agent.to_string(), "--since", "2026-11-25T08:00:00Z"])).unwrap();
        assert_eq!(parsed.recipient, Recipient::Agent(agent));
        assert_eq!(parsed.since.unix_timestamp(), 1_795_593_600);
        let client = ClientId::generate();
        let parsed = parse(&args(&["--since", "2026-11-25T08:00:00Z", "--client", &client.to_string()])).unwrap();
        assert_eq!(parsed.recipient, Recipient::Client(client));
    }

    #[test]
    fn says_what_is_wrong() {
        let agent = AgentId::generate().to_string();
        let missing = parse(&args(&["--agent", &agent])).unwrap_err().to_string();
        assert!(missing.contains("--since is required"), "{missing}");
        let nobody = parse(&args(&["--since", "2026-11-25T08:00:00Z"])).unwrap_err().to_string();
        assert!(nobody.contains("--agent or --client is required"), "{nobody}");
        let client = ClientId::generate().to_string();
        let both = parse(&args(&["--agent", &agent, "--client", &client])).unwrap_err().to_string();
        assert!(both.contains("name one --agent or --client"), "{both}");
        let malformed = parse(&args(&["--agent", &agent, "--since", "yesterday"])).unwrap_err().to_string();
        assert!(malformed.contains("RFC 3339"), "{malformed}");
        let not_an_agent = parse(&args(&["--agent", "cli_1", "--since", "2026-11-25T08:00:00Z"])).unwrap_err();
        assert!(not_an_agent.to_string().starts_with("--agent"), "{not_an_agent}");
        let dangling = parse(&args(&["--agent"])).unwrap_err().to_string();
        assert!(dangling.contains("--agent needs a value"), "{dangling}");
    }
}
