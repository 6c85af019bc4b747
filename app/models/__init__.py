"""Every ORM model, imported in one place: this module's `Base.metadata` is Alembic's target."""

from app.models.access import ApiKeyUsage
from app.models.account import Account, ApiKey, AuditEvent
from app.models.base import Base
from app.models.dashboard import Dashboard, DashboardWidget
from app.models.data_item import DataItem, ReferenceFile, ReferenceFileChunk
from app.models.field import FIELD_TYPES, Field
from app.models.job import ImportJob, ImportJobChunk
from app.models.row import rows_table
from app.models.share import DashboardShare
from app.models.stats import FieldStats
from app.models.webhook import Webhook, WebhookDelivery
from app.models.widget import Widget, WidgetSeries

__all__ = [
    "FIELD_TYPES",
    "Account",
    "ApiKey",
    "ApiKeyUsage",
    "AuditEvent",
    "Base",
    "Dashboard",
    "DashboardShare",
    "DashboardWidget",
    "DataItem",
    "Field",
    "FieldStats",
    "ImportJob",
    "ImportJobChunk",
    "ReferenceFile",
    "ReferenceFileChunk",
    "Webhook",
    "WebhookDelivery",
    "Widget",
    "WidgetSeries",
    "rows_table",
]
