"""Settings: one class, read from the environment (and an optional `.env`), documented field by field.

Every field here must appear in README.md's configuration table; `tests/test_docs.py` fails otherwise.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    database_url: str | None = Field(
        default=None,
        description=(
            "PostgreSQL (>= 14) to use, as postgresql+asyncpg://user:pass@host:port/db. "
            "Unset: an embedded PostgreSQL is started under DATA_DIR."
        ),
    )
    test_database_url: str | None = Field(
        default=None,
        description=(
            "Tests only: a PostgreSQL server to run the suite against instead of a throwaway "
            "embedded one. The suite creates and drops its own database on it."
        ),
    )
    data_dir: Path = Field(
        default=Path(".data"),
        description="Where the embedded PostgreSQL keeps its cluster (when DATABASE_URL is unset).",
    )
    embedded_pg_user: str = Field(
        default="nobody",
        description=(
            "When running as root, the unprivileged system user the embedded PostgreSQL runs as "
            "(PostgreSQL refuses to run as root)."
        ),
    )
    embedded_runtime_dir: Path = Field(
        default=Path("/var/lib/data-items-service"),
        description=(
            "When running as root and EMBEDDED_PG_USER cannot reach DATA_DIR (a checkout in a "
            "private home), the embedded cluster and a copy of its binaries live here instead."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address `python -m app serve` binds to.")
    port: int = Field(
        default=8000, ge=1, le=65535, description="Port `python -m app serve` binds to."
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "Worker processes `python -m app serve` runs (uvicorn --workers). All state is in "
            "PostgreSQL, so workers behave like replicas; size DB_POOL_SIZE accordingly."
        ),
    )
    root_path: str = Field(
        default="",
        description=(
            "Path prefix under which a gateway exposes the service (e.g. /data), so /docs and "
            "OpenAPI links are right behind it."
        ),
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description=(
            "Comma-separated proxy addresses whose X-Forwarded-For/-Proto headers are trusted "
            "(uvicorn's --forwarded-allow-ips); '*' trusts any."
        ),
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: LogFormat = Field(
        default=LogFormat.TEXT, description="`text` for people, `json` for log collectors."
    )
    migrate_on_start: bool = Field(
        default=True, description="Run database migrations when the service starts."
    )
    max_upload_bytes: int = Field(
        default=500 * 1024 * 1024,
        ge=1,
        description="Largest accepted upload (multipart body), counted while streaming; over it: 413.",
    )
    max_json_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1,
        description="Largest accepted JSON request body; over it: 413.",
    )
    body_read_timeout: float = Field(
        default=60,
        ge=0,
        description=(
            "Seconds a client may take to send the next piece of a request body (and the first); "
            "slower: 408 and the connection is closed. 0 turns it off."
        ),
    )
    rate_limit_per_minute: int = Field(
        default=0,
        ge=0,
        description=(
            "Requests per API key per minute (a fixed window, shared by every replica through "
            "PostgreSQL, never exceeded); over it: 429. 0 (the default) turns it off; requests "
            "are counted either way (GET /api/v1/usage/)."
        ),
    )
    auth_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description=(
            "How long a process answers a valid API key from memory: a revoked key is refused "
            "everywhere within this bound. 0 looks every key up on every request."
        ),
    )
    auth_cache_entries: int = Field(
        default=10_000,
        ge=1,
        description=(
            "Most valid keys, and separately most failed keys, a process remembers (LRU), so "
            "a flood of random keys cannot grow its memory."
        ),
    )
    auth_failures_per_minute: int = Field(
        default=60,
        ge=0,
        description=(
            "Failed authentications (missing, unknown, revoked or expired key) one client "
            "address may make in a minute, per process; past it the address gets a 429 with "
            "Retry-After until its minute is over, without a key lookup. 0: no limit."
        ),
    )
    cors_origins: str = Field(
        default="",
        description=(
            "Browser origins allowed to call the API (comma-separated, e.g. "
            "https://app.example.com; * for any). Empty (the default): CORS is off."
        ),
    )
    max_upload_rows: int = Field(
        default=5_000_000, ge=1, description="Most data rows accepted in one uploaded file."
    )
    max_upload_columns: int = Field(
        default=1_000, ge=1, description="Most columns accepted in one uploaded file."
    )
    max_cell_chars: int = Field(
        default=100_000, ge=1, description="Longest cell accepted in an uploaded file (characters)."
    )
    excel_max_cells: int = Field(
        default=16_000_000,
        ge=1,
        description=(
            "Largest used range (rows x columns) of a workbook sheet; the Excel reader allocates "
            "all of it, so one stray cell far from the data counts. Checked before reading."
        ),
    )
    excel_memory_mb: int = Field(
        default=4096,
        ge=512,
        description=(
            "Address space (MiB) of the child process each workbook is read in; past it the "
            "upload is a 400 and the service is unaffected."
        ),
    )
    excel_timeout_seconds: float = Field(
        default=600,
        gt=0,
        description="Longest a workbook may take to read (its child process is then killed: 400).",
    )
    upload_dir: Path | None = Field(
        default=None,
        description=(
            "Where uploads are spooled while they are read (default: a data-items-uploads folder "
            "in the system temp dir). Leftovers of a killed process are removed at start-up."
        ),
    )
    ingestion_concurrency: int = Field(
        default=2,
        ge=1,
        description=(
            "Files parsed and loaded at once per process; more uploads wait their turn (each "
            "holds its file's table in memory). Also the bundles imported, and the xlsx "
            "exports built, at once."
        ),
    )
    max_bulk_rows: int = Field(
        default=10_000,
        ge=1,
        description=(
            "Most rows accepted by one POST …/rows/bulk/ request, and most `row_refs` of one "
            "PATCH or DELETE …/rows/."
        ),
    )
    search_index_min_rows: int = Field(
        default=10_000,
        ge=0,
        description=(
            "Items with at least this many rows get a trigram search index, built in the "
            "background (smaller ones are searched by scanning)."
        ),
    )
    db_pool_size: int = Field(
        default=20, ge=1, description="Connections kept open per service process."
    )
    db_max_overflow: int = Field(
        default=0,
        ge=0,
        description=(
            "Extra connections a process may open under load; each is closed as soon as it is "
            "returned, so a steady load above DB_POOL_SIZE opens and closes connections all "
            "the time (raise DB_POOL_SIZE instead)."
        ),
    )
    db_pool_timeout: float = Field(
        default=10,
        gt=0,
        description=(
            "Seconds a request waits for a free pooled connection; then it is a 503 with "
            "Retry-After."
        ),
    )
    statement_timeout_seconds: float = Field(
        default=30,
        gt=0,
        description=(
            "Longest a database statement of an ordinary request may run (PostgreSQL "
            "statement_timeout; lock waits count); past it the request is a 503 with Retry-After."
        ),
    )
    long_statement_timeout_seconds: float = Field(
        default=1800,
        gt=0,
        description=(
            "The same bound for the statements of bulk work: loading and appending files, field "
            "type changes, item copies, bundle imports, producing downloads, recomputing "
            "statistics and background maintenance (index builds, vacuum)."
        ),
    )
    download_concurrency: int = Field(
        default=4,
        ge=1,
        description=(
            "Downloads (exports, bundles, reference files) produced at once per process, each on "
            "a pooled connection while it runs; one that waits 15 s for its turn is a 503."
        ),
    )
    download_max_per_account: int = Field(
        default=8,
        ge=1,
        description=(
            "Downloads one account may have open at once per process (each keeps a spool file "
            "until its client has read it); one more is a 429."
        ),
    )
    download_stall_seconds: float = Field(
        default=60,
        gt=0,
        description="A download whose client accepts nothing for this long is disconnected.",
    )
    job_workers: int = Field(
        default=1,
        ge=0,
        description=(
            "Import jobs (?async=true uploads) a process runs at once; 0 makes an API-only "
            "replica that queues jobs for the others. Jobs also take an INGESTION_CONCURRENCY slot."
        ),
    )
    job_lease_seconds: float = Field(
        default=60,
        ge=1,
        description=(
            "A running job's process heartbeats every third of this; a job without a heartbeat "
            "for this long (or whose process is gone) is marked failed."
        ),
    )
    job_max_pending_per_account: int = Field(
        default=10,
        ge=1,
        description="Queued plus running import jobs an account may have; more is a 429.",
    )
    job_retention_days: int = Field(
        default=30, ge=1, description="Finished import jobs are listed, then deleted, after this."
    )
    worker_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description=(
            "How often background workers look for jobs and due webhook deliveries queued by "
            "other replicas (work queued by the same process starts at once)."
        ),
    )
    webhook_allow_private_addresses: bool = Field(
        default=False,
        description=(
            "Allow webhook URLs on loopback, private, link-local and other non-public addresses "
            "(checked when a webhook is created and again, after DNS, at every delivery)."
        ),
    )
    webhook_timeout_seconds: float = Field(
        default=10, gt=0, le=120, description="Time allowed for one webhook delivery attempt."
    )
    webhook_max_attempts: int = Field(
        default=8, ge=1, le=50, description="Attempts per webhook delivery before it is failed."
    )
    webhook_retry_base_seconds: float = Field(
        default=30,
        gt=0,
        description="Wait before the first retry of a webhook delivery; doubles each attempt.",
    )
    webhook_retry_max_seconds: float = Field(
        default=3600, gt=0, description="Longest wait between two attempts of a delivery."
    )
    webhook_concurrency: int = Field(
        default=8, ge=1, description="Webhook deliveries a process sends at once."
    )
    webhook_concurrency_per_account: int = Field(
        default=0,
        ge=0,
        description=(
            "Deliveries of one account a process sends at once, so that one account's slow "
            "receivers never hold every WEBHOOK_CONCURRENCY slot. 0 (the default): a quarter of "
            "WEBHOOK_CONCURRENCY, at least 1."
        ),
    )
    webhook_max_pending_per_account: int = Field(
        default=10_000,
        ge=1,
        description=(
            "Pending (not yet succeeded or failed) webhook deliveries an account may have. A ping "
            "past it is a 429; an event past it is recorded as failed, not sent."
        ),
    )
    webhook_retention_days: int = Field(
        default=30,
        ge=1,
        description="Finished webhook deliveries are listed, then deleted, after this.",
    )
    webhook_secret_key: SecretStr | None = Field(
        default=None,
        description=(
            "Fernet key(s), comma-separated, that encrypt webhook signing secrets at rest: the "
            "first encrypts, all decrypt (rotation). Unset: secrets are stored as they are."
        ),
    )

    aggregates_per_account: int = Field(
        default=4,
        ge=0,
        description=(
            "Aggregate queries (POST …/query/, widget data, insights) one account may run at "
            "once per process; more: 429 with Retry-After, so one account cannot hold every "
            "database connection. 0: no bound."
        ),
    )
    llm_base_url: str | None = Field(
        default=None,
        description=(
            "An OpenAI-compatible chat endpoint for questions in plain language (POST "
            "…/ask/), up to its /v1: e.g. http://127.0.0.1:8080/v1 (llama.cpp's server), "
            "http://127.0.0.1:11434/v1 (Ollama), a vLLM server or a hosted API. Unset: "
            "questions answer 501."
        ),
    )
    llm_api_key: SecretStr | None = Field(
        default=None, description="Sent as `Authorization: Bearer …` to LLM_BASE_URL, if set."
    )
    llm_model: str = Field(
        default="", description="The model name LLM_BASE_URL serves (e.g. `qwen2.5:7b`)."
    )
    llm_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="How long a question waits for the model; past it: 503 with Retry-After.",
    )
    llm_concurrency: int = Field(
        default=4,
        ge=1,
        description="Questions sent to the model at once per process; more: 503 with Retry-After.",
    )

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @field_validator("root_path")
    @classmethod
    def _normalise_root_path(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith("/"):
            value = "/" + value
        return value.rstrip("/")

    @field_validator("database_url", "test_database_url")
    @classmethod
    def _asyncpg_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+asyncpg://" + value[len(prefix) :]
        if not value.startswith("postgresql+asyncpg://"):
            raise ValueError("must be a postgresql+asyncpg:// (or postgresql://) URL")
        return value

    @field_validator("webhook_secret_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        from app.webhooks.vault import parse_keys

        try:
            parse_keys(value.get_secret_value())
        except ValueError as exc:
            raise ValueError(f"WEBHOOK_SECRET_KEY: {exc}") from None
        return value

    @property
    def webhook_account_slots(self) -> int:
        """WEBHOOK_CONCURRENCY_PER_ACCOUNT as it applies: 0 means a quarter of the slots."""
        share = self.webhook_concurrency_per_account or self.webhook_concurrency // 4
        return max(1, min(share, self.webhook_concurrency))


def spool_dir(settings: Settings) -> Path:
    import tempfile

    return settings.upload_dir or Path(tempfile.gettempdir()) / "data-items-uploads"


@lru_cache
def get_settings() -> Settings:
    return Settings()
