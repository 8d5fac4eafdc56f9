use std::path::Path;
use std::time::Duration;

use rust_decimal::Decimal;
use secrecy::ExposeSecret;

use super::*;

fn minimal() -> SettingsSource {
    SettingsSource::from_pairs([
        ("DATABASE_URL", "postgres://postgres:hunter2@localhost/db"),
        ("REDIS_URL", "redis://localhost:6379"),
    ])
}

#[test]
fn defaults_come_from_seed_001() {
    let settings = Settings::from_source(&minimal()).unwrap();
    assert_eq!(settings.port, 8080);
    assert_eq!(settings.reputation_prior, ReputationPrior { weight: Decimal::TEN, mean: Decimal::from(3) });
    assert_eq!(settings.platform_fee.value(), Decimal::from_str_exact("0.025").unwrap());
    assert_eq!(settings.rate_limits.discovery, BucketSettings { capacity: 60, refill_per_min: 20 });
    assert_eq!(settings.rate_limits.read, BucketSettings { capacity: 120, refill_per_min: 60 });
    assert_eq!(settings.rate_limits.write, BucketSettings { capacity: 30, refill_per_min: 10 });
    assert_eq!(settings.rate_limits.write_ip, BucketSettings { capacity: 120, refill_per_min: 60 });
    assert_eq!(settings.signature_max_age, Duration::from_secs(30));
    assert_eq!(settings.nonce_ttl, Duration::from_secs(60));
    assert_eq!(settings.webhook_timeout, Duration::from_secs(10));
    assert_eq!(settings.public_reads, Duration::from_millis(1000));
    assert_eq!(settings.delivery_attempts_retention, Duration::from_secs(30 * 24 * 3600));
    assert_eq!(settings.endpoint_disable_after, Duration::from_secs(5 * 24 * 3600));
    assert_eq!(settings.shutdown_grace, Duration::from_secs(8));
    assert_eq!(settings.webhook_retry_schedule.step_after(8), Some(Duration::from_secs(36_000)));
    assert_eq!(settings.webhook_retry_schedule.step_after(9), None, "nine attempts");
    assert_eq!(settings.webhook_endpoint_concurrency, 10);
    assert_eq!(settings.webhook_recipient_concurrency, 20);
    assert_eq!(settings.cloud_tasks.queues(), ["projects/local/locations/local/queues/webhook-delivery"]);
    assert!(settings.cloud_tasks.endpoint.is_none() && settings.worker_shared_secret.is_none());
    assert!(!settings.allow_http_endpoints);
    assert_eq!(settings.database_url.expose_secret(), "postgres://postgres:hunter2@localhost/db");
}

#[test]
fn delivery_queues_after_the_first_are_numbered_from_one() {
    let mut source = minimal();
    source.set("CLOUD_TASKS_QUEUE", "projects/p/locations/l/queues/webhook-delivery");
    source.set("CLOUD_TASKS_QUEUE_COUNT", "3");
    let queues = Settings::from_source(&source).unwrap().cloud_tasks.queues();
    let base = "projects/p/locations/l/queues/webhook-delivery";
    assert_eq!(queues, [base.to_owned(), format!("{base}-1"), format!("{base}-2")]);
}

#[test]
fn a_missing_setting_is_named() {
    let err = Settings::from_source(&SettingsSource::default()).unwrap_err();
    assert!(matches!(err, SettingsError::Missing { name: "DATABASE_URL", .. }));
    assert!(err.to_string().contains("DATABASE_URL"));
}

#[test]
fn a_malformed_setting_is_named_with_its_value() {
    let mut source = minimal();
    source.set("PORT", "eighty");
    let err = Settings::from_source(&source).unwrap_err().to_string();
    assert!(err.contains("PORT") && err.contains("eighty"), "{err}");

    let mut source = minimal();
    source.set("PLATFORM_FEE_PERCENT", "1.5");
    let err = Settings::from_source(&source).unwrap_err().to_string();
    assert!(err.contains("PLATFORM_FEE_PERCENT") && err.contains("below 1"), "{err}");

    for (name, value, reason) in [
        ("RATING_PRIOR_WEIGHT", "0", "above 0"),
        ("RATING_PRIOR_WEIGHT", "many", "many"),
        ("RATING_PRIOR_MEAN", "5.5", "from 1 to 5"),
    ] {
        let mut source = minimal();
        source.set(name, value);
        let err = Settings::from_source(&source).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains(reason), "{err}");
    }

    let mut source = minimal();
    source.set("NONCE_TTL_SECONDS", "20");
    let err = Settings::from_source(&source).unwrap_err().to_string();
    assert!(err.contains("NONCE_TTL_SECONDS") && err.contains("35"), "{err}");

    let mut source = minimal();
    source.set("CLOUD_TASKS_QUEUE", "webhook-delivery");
    let err = Settings::from_source(&source).unwrap_err().to_string();
    assert!(err.contains("CLOUD_TASKS_QUEUE"), "{err}");

    for count in ["0", "65", "300", "four"] {
        let mut source = minimal();
        source.set("CLOUD_TASKS_QUEUE_COUNT", count);
        let err = Settings::from_source(&source).unwrap_err().to_string();
        assert!(err.contains("CLOUD_TASKS_QUEUE_COUNT") && err.contains(count), "{err}");
    }

    let mut source = minimal();
    source.set("PUBSUB_EVENTS_TOPIC", "projects/p/subscriptions/registry-events");
    let err = Settings::from_source(&source).unwrap_err().to_string();
    assert!(err.contains("PUBSUB_EVENTS_TOPIC") && err.contains("projects/PROJECT/topics/TOPIC"), "{err}");

    let mut source = minimal();
    source.set("WEBHOOK_RETRY_SCHEDULE", "5s,tomorrow");
    let err = Settings::from_source(&source).unwrap_err().to_string();
    assert!(err.contains("WEBHOOK_RETRY_SCHEDULE") && err.contains("tomorrow"), "{err}");

    let mut source = minimal();
    source.set("RATE_LIMIT_WRITE_CAPACITY", "0");
    let err = Settings::from_source(&source).unwrap_err().to_string();
    assert!(err.contains("RATE_LIMIT_WRITE_CAPACITY"), "{err}");
}

#[test]
fn the_job_accept_timeout_is_a_day_by_default_and_at_most_a_week() {
    assert_eq!(Settings::from_source(&minimal()).unwrap().job_accept_timeout, Duration::from_secs(86_400));
    for (value, accepted) in [("1", true), ("604800", true), ("0", false), ("604801", false), ("-5", false)] {
        let mut source = minimal();
        source.set("JOB_ACCEPT_TIMEOUT_SECONDS", value);
        match Settings::from_source(&source) {
            Ok(settings) => {
                assert!(accepted, "{value} is refused");
                assert_eq!(settings.job_accept_timeout.as_secs().to_string(), value);
            }
            Err(err) => {
                assert!(!accepted, "{value} is accepted: {err}");
                let err = err.to_string();
                assert!(err.contains("JOB_ACCEPT_TIMEOUT_SECONDS") && err.contains(value), "{err}");
            }
        }
    }
}

#[test]
fn cors_origins_are_none_by_default_and_must_be_bare_origins() {
    assert!(Settings::from_source(&minimal()).unwrap().cors_allowed_origins.is_empty());

    let mut source = minimal();
    source.set("CORS_ALLOWED_ORIGINS", "https://app.example.com, http://localhost:5173,");
    assert_eq!(
        Settings::from_source(&source).unwrap().cors_allowed_origins,
        ["https://app.example.com", "http://localhost:5173"]
    );

    for value in [
        "app.example.com",
        "https://app.example.com/",
        "https://app.example.com/path",
        "ftp://app.example.com",
        "https://APP.example.com",
        "https://app.example.com:443",
        "https://user@app.example.com",
        "*",
    ] {
        let mut source = minimal();
        source.set("CORS_ALLOWED_ORIGINS", format!("https://ok.example.com,{value}"));
        let err = Settings::from_source(&source).unwrap_err().to_string();
        assert!(err.contains("CORS_ALLOWED_ORIGINS") && err.contains(value), "{value}: {err}");
    }
}

#[test]
fn a_malformed_secret_is_named_but_never_echoed() {
    let mut source = minimal();
    source.set("DATABASE_URL", "mysql://root:hunter2@localhost/db");
    let err = Settings::from_source(&source).unwrap_err().to_string();
    assert!(err.contains("DATABASE_URL"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(!format!("{:?}", Settings::from_source(&minimal()).unwrap()).contains("hunter2"));
}

#[test]
fn the_webhook_secret_key_is_32_bytes_of_base64_never_echoed_or_kms() {
    assert!(Settings::from_source(&minimal()).unwrap().webhook_secret_key.is_none());

    let mut source = minimal();
    source.set("WEBHOOK_SECRET_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
    let settings = Settings::from_source(&source).unwrap();
    assert!(
        matches!(&settings.webhook_secret_key, Some(WebhookSecretKey::Local(key)) if key.expose_secret().len() == 32)
    );
    assert!(!format!("{settings:?}").contains("MDEyMzQ1"), "never printed");

    for (value, reason) in [("c2hvcnQta2V5", "got 9 bytes"), ("not base64 at all!", "must be base64")] {
        let mut source = minimal();
        source.set("WEBHOOK_SECRET_KEY", value);
        let err = Settings::from_source(&source).unwrap_err().to_string();
        assert!(err.contains("WEBHOOK_SECRET_KEY") && err.contains(reason), "{err}");
        assert!(!err.contains(value), "the value is not echoed: {err}");
    }

    let kms = "projects/p/locations/us-west1/keyRings/agent-registry/cryptoKeys/webhook-secrets";
    let mut source = minimal();
    source.set("WEBHOOK_SECRET_KMS_KEY", kms);
    let settings = Settings::from_source(&source).unwrap();
    assert!(matches!(&settings.webhook_secret_key, Some(WebhookSecretKey::Kms { key, endpoint: None }) if key == kms));
    source.set("WEBHOOK_SECRET_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
    let err = Settings::from_source(&source).unwrap_err().to_string();
    assert!(err.contains("not both"), "{err}");

    let mut source = minimal();
    source.set("WEBHOOK_SECRET_KMS_KEY", "webhook-secrets");
    let err = Settings::from_source(&source).unwrap_err().to_string();
    assert!(err.contains("WEBHOOK_SECRET_KMS_KEY") && err.contains("keyRings/KEYRING"), "{err}");
}

#[test]
fn platform_signing_keys_are_optional_here_and_refused_when_malformed_or_repeated() {
    let settings = Settings::from_source(&minimal()).unwrap();
    assert!(settings.platform_signing_key.is_none() && settings.platform_signing_key_previous.is_none());

    let key = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
    let mut source = minimal();
    source.set("PLATFORM_SIGNING_KEY", key);
    source.set("PLATFORM_SIGNING_KEY_PREVIOUS", "CAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg=");
    let settings = Settings::from_source(&source).unwrap();
    assert_eq!(settings.platform_signing_key.unwrap().signing_key().to_bytes(), [7u8; 32]);
    assert!(!format!("{:?}", Settings::from_source(&source).unwrap()).contains(key));

    for (name, value, reason) in [
        ("PLATFORM_SIGNING_KEY", "dev-signing-key-not-for-production", "not base64"),
        ("PLATFORM_SIGNING_KEY", "c2hvcnQ=", "5 bytes"),
        ("PLATFORM_SIGNING_KEY_PREVIOUS", key, "same key"),
    ] {
        let mut source = minimal();
        source.set("PLATFORM_SIGNING_KEY", key);
        source.set(name, value);
        let err = Settings::from_source(&source).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains(reason), "{err}");
        assert!(!err.contains("dev-signing") && !err.contains("c2hvcnQ"), "the value is not echoed: {err}");
    }
}

#[test]
fn env_file_is_a_fallback() {
    let dir = std::env::temp_dir().join(format!("settings-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(".env");
    std::fs::write(&path, "PORT=9999\nDATABASE_URL=postgres://file/db\n").unwrap();
    let mut source = SettingsSource::from_env_file(&path).unwrap();
    source.set("REDIS_URL", "redis://localhost");
    source.set("PORT", "7000");
    let settings = Settings::from_source(&source).unwrap();
    assert_eq!(settings.port, 7000, "explicit values win over the file");
    assert_eq!(settings.database_url.expose_secret(), "postgres://file/db");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_egress_allow_list_is_parsed_here_and_named_when_malformed() {
    let loopback = "127.0.0.1".parse().unwrap();
    assert!(!Settings::from_source(&minimal()).unwrap().egress_policy.permits(loopback));

    let mut source = minimal();
    source.set("EGRESS_ALLOW_CIDRS", "127.0.0.0/8, ::1/128");
    assert!(Settings::from_source(&source).unwrap().egress_policy.permits(loopback));

    source.set("EGRESS_ALLOW_CIDRS", "127.0.0.0/33");
    let err = Settings::from_source(&source).unwrap_err().to_string();
    assert!(err.contains("EGRESS_ALLOW_CIDRS") && err.contains("127.0.0.0/33"), "{err}");
}

#[test]
fn no_secret_is_printed_by_debug() {
    let samples = [
        ("DATABASE_URL", "postgres://postgres:database-secret@localhost/db"),
        ("DATABASE_READ_URL", "postgres://postgres:replica-secret@localhost/db"),
        ("REDIS_URL", "redis://:redis-secret@localhost:6379"),
        ("PLATFORM_SIGNING_KEY", "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="),
        ("PLATFORM_SIGNING_KEY_PREVIOUS", "CAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg="),
        ("WORKER_SHARED_SECRET", "worker-secret"),
        ("WEBHOOK_SECRET_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="),
    ];
    for variable in VARIABLES.iter().filter(|variable| variable.secret) {
        assert!(samples.iter().any(|(name, _)| *name == variable.name), "give the secret {} a sample", variable.name);
    }
    let printed = format!("{:?}", Settings::from_source(&SettingsSource::from_pairs(samples)).unwrap());
    for (name, value) in samples {
        assert!(!printed.contains(value), "{name} is printed: {printed}");
    }
}

#[test]
fn each_variable_is_declared_once_with_a_description() {
    for (index, variable) in VARIABLES.iter().enumerate() {
        assert!(VARIABLES[..index].iter().all(|other| other.name != variable.name), "{} twice", variable.name);
        assert!(variable.description.ends_with('.') || variable.description.ends_with(')'), "{}", variable.name);
        if let Some(local) = variable.local {
            assert_ne!(Some(local), variable.default, "{}: a local value is one other than the default", variable.name);
        }
    }
}

/// The document with the settings table (`| Variable | Default | Meaning |`).
const SETTINGS_TABLE: &str = "docs/OPERATIONS.md";

fn repository_file(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|error| panic!("cannot read {path}: {error}"))
}

fn declared(name: &str, document: &str) -> &'static Variable {
    VARIABLES
        .iter()
        .find(|variable| variable.name == name)
        .unwrap_or_else(|| panic!("{document} has {name}, not declared"))
}

/// Every declared variable is set in `deploy/.env.example`, to its default
/// or to its declared local value (a secret's value is the developer's own,
/// so only its presence is checked), and nothing else is.
#[test]
fn env_example_sets_every_declared_variable_as_declared() {
    let example = repository_file("deploy/.env.example");
    let mut set = Vec::new();
    for line in example.lines().filter(|line| !line.starts_with('#') && !line.trim().is_empty()) {
        let (name, value) = line.split_once('=').unwrap_or_else(|| panic!("not NAME=value: {line}"));
        let variable = declared(name, "deploy/.env.example");
        assert!(!set.contains(&name), "deploy/.env.example sets {name} twice");
        set.push(name);
        match (variable.secret, variable.local.or(variable.default)) {
            (true, None) => assert!(!value.is_empty(), "deploy/.env.example leaves the required {name} empty"),
            (true, Some(_)) => {}
            (false, expected) => assert_eq!(Some(value), expected, "deploy/.env.example's {name}"),
        }
    }
    for variable in VARIABLES {
        assert!(set.contains(&variable.name), "{} is not in deploy/.env.example", variable.name);
    }
}

/// The settings table has a row per declared variable and no other; its
/// Default column says the declared default (`` `value` ``, `empty` or
/// `required`) and whether the variable is secret.
#[test]
fn the_settings_table_documents_every_declared_variable_as_declared() {
    let document = repository_file(SETTINGS_TABLE);
    let rows: Vec<&str> = document
        .lines()
        .skip_while(|line| !line.starts_with("| Variable | Default |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .collect();
    let mut documented = Vec::new();
    for row in rows {
        let cells: Vec<&str> = row.trim_start_matches("| ").splitn(3, " | ").collect();
        let [name, default, _meaning] = cells[..] else { panic!("{SETTINGS_TABLE}: not a settings row: {row}") };
        let name = name.trim_matches('`');
        let variable = declared(name, SETTINGS_TABLE);
        assert!(!documented.contains(&name), "{SETTINGS_TABLE} documents {name} twice");
        documented.push(name);
        let stated = if let Some(quoted) = default.strip_prefix('`') {
            quoted.split_once('`').map(|(value, _)| value)
        } else if default.starts_with("empty") {
            Some("")
        } else {
            assert!(default.starts_with("required"), "{SETTINGS_TABLE}: {name}'s default reads {default:?}");
            None
        };
        assert_eq!(stated, variable.default, "{SETTINGS_TABLE}: {name}'s default");
        assert_eq!(default.contains("secret"), variable.secret, "{SETTINGS_TABLE}: whether {name} is secret");
    }
    for variable in VARIABLES {
        assert!(documented.contains(&variable.name), "{} is not in {SETTINGS_TABLE}'s settings table", variable.name);
    }
}
