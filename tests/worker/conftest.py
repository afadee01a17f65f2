from tests.core.pipeline import app_config, events, pg_url, sqlite_url  # noqa: F401 - fixtures
from tests.worker.outbox_helpers import connector  # noqa: F401 - fixture
