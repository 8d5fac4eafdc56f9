"""Settings the way the seeds' `config.py` reads them: pydantic-settings,
environment variables first, `.env` as the fallback, no environment forks."""

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str
    redis_url: str = "redis://localhost:6379/0"
    # Keys of one run apart from another's on a shared Redis (as the Rust API's setting).
    redis_key_prefix: str = ""

    # The seeds' rate-limit defaults (token buckets per caller and class).
    rate_limit_discovery_capacity: int = 60
    rate_limit_discovery_refill_per_min: int = 20
    rate_limit_read_capacity: int = 120
    rate_limit_read_refill_per_min: int = 60

    @property
    def asyncpg_dsn(self) -> str:
        """The seeds write SQLAlchemy's `postgresql+asyncpg://`; asyncpg itself takes `postgresql://`."""
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
