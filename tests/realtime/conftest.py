from tests.core.pipeline import app_config, events, pg_url, sqlite_url  # noqa: F401 - fixtures
