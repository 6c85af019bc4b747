"""Settings: one class, read from the environment (and an optional `.env`), documented field by field.

Every field here must appear in README.md's configuration table; `tests/test_docs.py` fails otherwise.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
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
    max_upload_rows: int = Field(
        default=5_000_000, ge=1, description="Most data rows accepted in one uploaded file."
    )
    max_upload_columns: int = Field(
        default=1_000, ge=1, description="Most columns accepted in one uploaded file."
    )
    max_cell_chars: int = Field(
        default=100_000, ge=1, description="Longest cell accepted in an uploaded file (characters)."
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
            "holds its file's table in memory)."
        ),
    )
    max_bulk_rows: int = Field(
        default=10_000, ge=1, description="Most rows accepted by one POST …/rows/bulk/ request."
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
        default=10, ge=1, description="Connections kept open per service process."
    )
    db_max_overflow: int = Field(
        default=10, ge=0, description="Extra connections a process may open under load."
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


def spool_dir(settings: Settings) -> Path:
    import tempfile

    return settings.upload_dir or Path(tempfile.gettempdir()) / "data-items-uploads"


@lru_cache
def get_settings() -> Settings:
    return Settings()
