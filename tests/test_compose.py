"""docker-compose.yml mirrors what tests/pipeline/test_workers_on_redis.py starts: app, GPU worker, Redis, PostgreSQL,
one database, one data volume, one master key."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_the_app_a_worker_redis_and_postgres():
    assert set(compose()["services"]) == {"app", "worker", "redis", "postgres"}


def test_the_worker_is_the_cli_command_and_reserves_one_gpu():
    worker = compose()["services"]["worker"]
    assert worker["entrypoint"] == ["python", "cli.py", "worker"]
    [device] = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"] and device["count"] == 1
    assert "/readyz" in " ".join(worker["healthcheck"]["test"])


def test_app_and_worker_share_the_database_the_queue_the_master_key_and_the_data_volume():
    services = compose()["services"]
    app, worker = services["app"], services["worker"]
    for name in ("HEADSHOT_DATABASE_URL", "HEADSHOT_QUEUE_URL", "HEADSHOT_MASTER_KEY"):
        assert app["environment"][name] == worker["environment"][name]
    assert app["environment"]["HEADSHOT_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert app["environment"]["HEADSHOT_QUEUE_URL"].startswith("redis://redis:")
    assert "headshot-data:/data" in app["volumes"] and app["volumes"] == worker["volumes"]


def test_redis_keeps_its_messages_across_a_restart():
    assert "--appendonly" in compose()["services"]["redis"]["command"]
