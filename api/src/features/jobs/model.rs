//! The job resource as clients and agents see it, and as they send it.

use serde::{Deserialize, Serialize};
use shared::domain::{AgentId, EndpointUrl, Price};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::resources::job::Job;

/// Hire an agent.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJob {
    #[schema(value_type = String, example = "agt_0b7e4f3c9a1d4e2f8c6b5a4d3e2f1a0b", pattern = "^agt_[0-9a-fA-F]{32}$")]
    pub agent_id: AgentId,
    /// Anything JSON; the agent's input.
    #[schema(value_type = Value)]
    pub input: serde_json::Value,
    /// The agreed price: at most the agent's price.
    #[schema(value_type = String, example = "12.50", pattern = "^\\s*(1000000(\\.0{1,6})?|[0-9]{1,6}(\\.[0-9]{1,6})?)\\s*$")]
    pub price: Price,
    /// Where accepted/completed/failed/expired webhooks go; https required.
    #[schema(value_type = Option<String>, max_length = 2048, pattern = "^https://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?([/?][^\\s#]*)?$")]
    pub callback_url: Option<EndpointUrl>,
    /// How long the agent has to accept, in seconds: 60–604800 (default
    /// `JOB_ACCEPT_TIMEOUT_SECONDS`, a day). Not accepted by then, the job
    /// expires.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "shared::domain::whole_number::optional"
    )]
    #[schema(minimum = 60, maximum = 604800, example = 3600)]
    pub accept_within_seconds: Option<u32>,
    /// When the work must be done (RFC 3339): in the future, at most a year
    /// ahead. Not completed by then, the job expires; a deadline before the
    /// accept window ends ends the window too.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deadline: Option<OffsetDateTime>,
}

/// Complete a job with its result.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteJob {
    /// Anything JSON; the job's result.
    #[schema(value_type = Value)]
    pub result: serde_json::Value,
}

/// Fail a job, saying why.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailJob {
    /// 1–2000 characters.
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = "^[^\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F]*[^\\s\\x00-\\x1F\\x7F-\\x9F][^\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F]*$"
    )]
    pub reason: String,
}

pub const MAX_FAILURE_REASON_CHARS: usize = 2000;

/// One page of jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}
