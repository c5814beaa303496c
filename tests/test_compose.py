"""docker-compose.yml mirrors what tests/app/test_two_apps_two_workers.py starts: app replicas, GPU workers, Redis,
PostgreSQL, one database, one data volume, one master key; and the load balancer in front of the replicas
(deploy/haproxy.cfg), which keeps each page on its replica by a cookie (README, "Web replicas")."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def haproxy() -> dict[str, list[str]]:
    """deploy/haproxy.cfg as {section header: its directives}, comments and blank lines left out."""
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for raw in (ROOT / "deploy" / "haproxy.cfg").read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not raw[0].isspace():
            current = sections.setdefault(" ".join(line.split()), [])
        else:
            current.append(" ".join(line.split()))
    return sections


def workers() -> dict[str, dict]:
    return {name: service for name, service in compose()["services"].items() if name.startswith("worker")}


def gpu_devices(service: dict) -> list[dict]:
    return service["deploy"]["resources"]["reservations"]["devices"]


def test_compose_runs_app_replicas_behind_a_balancer_gpu_workers_redis_and_postgres():
    services = compose()["services"]
    assert set(services) - set(workers()) == {"lb", "app", "redis", "postgres"} and workers()
    assert services["app"]["deploy"]["replicas"] >= 2


def test_each_worker_is_the_cli_command_on_a_gpu_of_its_own():
    seen: set[str] = set()
    for name, worker in workers().items():
        assert worker["entrypoint"] == ["python", "cli.py", "worker"]
        assert "/readyz" in " ".join(worker["healthcheck"]["test"])
        assert worker.get("deploy", {}).get("replicas", 1) == 1, f"{name}: replicas would share its GPU"
        [device] = gpu_devices(worker)
        # By device id, never `count`: `count: 1` gives every replica and every service the same first GPU.
        assert "count" not in device and device["capabilities"] == ["gpu"]
        [gpu] = device["device_ids"]
        assert name == f"worker-gpu{gpu}" and gpu not in seen, f"{name} reserves GPU {gpu}"
        seen.add(gpu)


def test_the_app_replicas_run_instant_on_a_gpu_no_worker_has():
    [device] = gpu_devices(compose()["services"]["app"])
    assert device["capabilities"] == ["gpu"] and "count" not in device
    worker_gpus = {gpu for worker in workers().values() for d in gpu_devices(worker) for gpu in d["device_ids"]}
    assert not set(device["device_ids"]) & worker_gpus


def test_every_service_comes_back_after_a_crash_or_a_reboot():
    for name, service in compose()["services"].items():
        assert service.get("restart") == "unless-stopped", name


def test_app_and_workers_share_the_database_the_queue_the_master_key_and_the_data_volume():
    services = compose()["services"]
    app = services["app"]
    for worker in workers().values():
        for name in ("HEADSHOT_DATABASE_URL", "HEADSHOT_DATABASE_PASSWORD_FILE", "HEADSHOT_QUEUE_URL",
                     "HEADSHOT_MASTER_KEY_FILE"):
            assert app["environment"][name] == worker["environment"][name]
        assert app["volumes"] == worker["volumes"] and app["secrets"] == worker["secrets"]
    assert app["environment"]["HEADSHOT_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert app["environment"]["HEADSHOT_QUEUE_URL"].startswith("redis://redis:")
    assert "headshot-data:/data" in app["volumes"]


def test_secrets_come_from_mounted_files_never_from_the_environment():
    services, secrets = compose()["services"], compose()["secrets"]
    text = (ROOT / "docker-compose.yml").read_text()
    assert "HEADSHOT_MASTER_KEY:" not in text and "POSTGRES_PASSWORD:" not in text
    env = services["app"]["environment"]
    from sqlalchemy import make_url
    assert make_url(env["HEADSHOT_DATABASE_URL"]).password is None  # the password is only in its file
    for variable, secret in (("HEADSHOT_MASTER_KEY_FILE", "headshot_master_key"),
                             ("HEADSHOT_DATABASE_PASSWORD_FILE", "postgres_password")):
        assert env[variable] == f"/run/secrets/{secret}" and secret in services["app"]["secrets"]
        assert secrets[secret]["file"].startswith("./secrets/")
    postgres = services["postgres"]
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert "postgres_password" in postgres["secrets"]
    # The folder of secrets never reaches an image (tests/test_dockerignore.py checks the pattern at any depth).
    assert "**/secrets" in (ROOT / ".dockerignore").read_text().split()


def test_the_compose_settings_pass_the_studios_own_checks(tmp_path):
    """The environment compose gives the app, with its secrets where compose mounts them, loads as settings and
    hands the database its password from the file."""
    from sqlalchemy import make_url

    from settings import load_settings
    (tmp_path / "postgres_password").write_text("from-the-secret\n")
    env = {k: v for k, v in compose()["services"]["app"]["environment"].items() if k.startswith("HEADSHOT_")}
    env["HEADSHOT_CONTACT_EMAIL"] = "privacy@example.org"
    env["HEADSHOT_DATABASE_PASSWORD_FILE"] = str(tmp_path / "postgres_password")
    settings = load_settings(env)
    assert make_url(settings.database).password == "from-the-secret"


def test_redis_keeps_its_messages_across_a_restart():
    assert "--appendonly" in compose()["services"]["redis"]["command"]


def test_the_balancer_is_the_one_way_in_to_the_replicas():
    services = compose()["services"]
    lb, app = services["lb"], services["app"]
    assert "ports" not in app and lb["ports"] == ["127.0.0.1:7860:7860"]  # replicas publish nothing themselves
    assert "./deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in lb["volumes"]
    assert lb["depends_on"]["app"]["condition"] == "service_healthy"


def test_a_page_stays_on_its_replica_by_a_cookie_not_by_its_address():
    backend = haproxy()["backend apps"]
    [cookie] = [line for line in backend if line.startswith("cookie ")]
    name, *options = cookie.split()[1:]
    assert {"insert", "indirect", "nocache", "httponly", "dynamic"} <= set(options)
    assert 'attr "SameSite=Lax"' in cookie
    from web.boundary.web_access import CLIENT_COOKIE
    assert name != CLIENT_COOKIE  # the balancer's cookie never overwrites the app's own
    assert any(line.startswith("dynamic-cookie-key ") for line in backend)
    # Not by address: an office behind one address would all land on one replica, a phone changing networks
    # would lose its page; and no stick table keeps visitors' addresses.
    every_line = [line for lines in haproxy().values() for line in lines]
    assert not [line for line in every_line if re.match(r"(balance (source|hdr)|stick|hash-type)", line)]
    assert "balance leastconn" in backend


def test_the_balancer_finds_every_replica_by_name_and_checks_its_health():
    backend = haproxy()["backend apps"]
    [template] = [line for line in backend if line.startswith("server-template ")]
    assert re.fullmatch(r"server-template app 1-\d+ app:7860 check resolvers docker init-addr none", template)
    assert haproxy()["resolvers docker"][0] == "nameserver dns 127.0.0.11:53"  # Docker's DNS: `--scale app=N`
    assert "http-check send meth GET uri /healthz" in backend
    from web.boundary.middleware import ROUTES
    assert any(method == "GET" and pattern.fullmatch("/healthz") and kind == "page" for method, pattern, kind in ROUTES)


def test_event_streams_outlive_gradios_heartbeat_and_a_lost_replica_sends_its_pages_elsewhere():
    defaults = haproxy()["defaults"]
    seconds = {"s": 1, "m": 60, "h": 3600}
    for side in ("client", "server"):
        [value] = [line.split()[2] for line in defaults if line.startswith(f"timeout {side} ")]
        assert int(value[:-1]) * seconds[value[-1]] > 15  # Gradio writes on an open stream every 15 s
    assert "option redispatch" in defaults


def test_the_balancer_states_the_visitors_address_itself_and_the_replicas_believe_only_the_balancer():
    frontend = haproxy()["frontend studio"]
    for header in ("X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "X-Real-IP"):
        assert f"http-request del-header {header}" in frontend  # what a visitor sends is dropped
    assert "option forwardfor" in haproxy()["backend apps"]
    services = compose()["services"]
    lb_address = services["lb"]["networks"]["edge"]["ipv4_address"]
    assert services["app"]["environment"]["HEADSHOT_TRUSTED_PROXIES"] == lb_address
    for worker in workers().values():
        assert "HEADSHOT_TRUSTED_PROXIES" not in worker["environment"]  # a worker serves no visitor
    # The fixed address lies outside the range the replicas' addresses are drawn from.
    [edge] = compose()["networks"]["edge"]["ipam"]["config"]
    import ipaddress
    assert ipaddress.ip_address(lb_address) in ipaddress.ip_network(edge["subnet"])
    assert ipaddress.ip_address(lb_address) not in ipaddress.ip_network(edge["ip_range"])


def test_the_balancer_keeps_no_log_of_visitors():
    assert not [line for lines in haproxy().values() for line in lines if line.split()[0] == "log"]
    assert not [line for lines in haproxy().values() for line in lines if line.startswith("option httplog")]


def test_the_balancer_does_not_publish_the_replicas_metrics():
    assert "http-request deny deny_status 404 if { path -i -m beg /metrics }" in haproxy()["frontend studio"]


def test_each_replica_keeps_gradios_temp_folder_in_its_own_memory_not_on_the_shared_volume():
    from settings import load_settings
    temp = load_settings({"HEADSHOT_DATA_DIR": "/data"}).gradio_temp_dir  # as the image sets it
    mounts = {entry.split(":")[0]: entry for entry in compose()["services"]["app"]["tmpfs"]}
    assert str(temp) in mounts and "uid=1000" in mounts[str(temp)] and "mode=0700" in mounts[str(temp)]
