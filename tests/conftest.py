"""Test session wiring: each fixture family lives in its own module under tests/fixtures."""

pytest_plugins = [
    "tests.fixtures.db",
    "tests.fixtures.redis",
    "tests.fixtures.server",
    "tests.fixtures.proxy",
    "tests.fixtures.teams",
]
