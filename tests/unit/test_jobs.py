"""The deploy steps' pure pieces: the migration step's labels name each project app's
migrations (a preview of a release that adds one shows that label change)."""

from __future__ import annotations

from components import jobs


def test_migration_labels_name_each_apps_migrations():
    labels = jobs.migration_labels(
        {"core": ("0001_initial", "0002_add_flag"), "shop.orders": ("0001_initial",)}
    )
    assert labels == {
        "djangostack.migrations.core": "0001_initial 0002_add_flag",
        "djangostack.migrations.shop.orders": "0001_initial",
    }
    assert jobs.migration_labels({}) == {}
