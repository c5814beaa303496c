"""The real app in queue mode (HEADSHOT_QUEUE_URL): its page's "Make my headshots" goes to a `cli.py worker`
process through Redis, on PostgreSQL and a shared data directory, and the page watching the job hands the headshots
to their owner. The web side's handlers are the same as in-process: only the line behind them changed.
"""

import re
import subprocess
import sys

import pytest
from gradio_client import Client, handle_file
from sqlalchemy import create_engine, text

from tests.app.conftest import ROOT, server_environment, start_server, stop_server


@pytest.fixture(scope="module")
def queued_studio(tmp_path_factory, postgres_server, redis_server):
    database_url = postgres_server.create_database()
    settings = {"queue_url": redis_server.url, "database_url": database_url, "train_steps": "2"}
    server, proc = start_server(tmp_path_factory, **settings)  # first: it creates the schema and the keys
    env = server_environment(server.data_dir, 0)  # the same data directory: the shared blob volume
    env.update({f"HEADSHOT_{k.upper()}": v for k, v in settings.items()})
    log = server.log.with_name("worker.log")
    with open(log, "wb") as out:
        worker = subprocess.Popen([sys.executable, "cli.py", "worker", "--name", "gpu-a"], cwd=ROOT, env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
    yield server, log, database_url
    worker.terminate()
    worker.wait(30)
    stop_server(proc)
    postgres_server.drop_database(database_url)


def test_in_queue_mode_the_page_gets_its_headshots_from_a_worker_and_they_are_the_owners_alone(queued_studio,
                                                                                                 faces_dir):
    server, worker_log, database_url = queued_studio
    client = Client(server.url, verbose=False, download_files=False, analytics_enabled=False)
    try:
        client.predict(True, True, True, api_name="/consent")
        report, *_ = client.predict([handle_file(str(faces_dir / n)) for n in ("obama_1.jpg", "obama_4.jpg")],
                                    api_name="/upload")
        assert report.count("data-accepted='true'") == 2
        gallery, status, _ = client.predict(["corporate_grey"], 1, api_name="/generate")
        assert "ready" in status.lower()
        assert len(re.findall(r"media/([\w-]+)'", gallery)) == 2  # one headshot + the ZIP
        started = re.findall(r"job (\w+) started on gpu-a", worker_log.read_text())
        assert len(started) == 1  # made by the worker, not by the app process
        engine = create_engine(database_url)
        with engine.connect() as conn:  # the headshots' key: owner-held only, the studio's copy gone
            held = conn.execute(text("SELECT count(*) FROM owner_keys WHERE category = 'headshots'")).scalar()
            master = conn.execute(text("SELECT count(*) FROM data_keys WHERE category = 'headshots'")).scalar()
        engine.dispose()
        assert (held, master) == (1, 0)
    finally:
        client.close()



def test_in_queue_mode_the_apps_metrics_read_the_shared_queue(queued_studio):
    import time

    from settings import load_settings
    from studio.job_claims import JobClaims
    from studio.jobs import Job, JobRecords
    from studio.service import Studio
    from tests.app.test_metrics_route import scrape
    server, _, database_url = queued_studio
    env = server_environment(server.data_dir, 0)
    env.update(HEADSHOT_QUEUE_URL="redis://127.0.0.1:1/0", HEADSHOT_DATABASE_URL=database_url)
    studio = Studio(load_settings({k: v for k, v in env.items() if k.startswith("HEADSHOT_")}))  # another replica
    try:
        session_id = studio.start_session()
        JobRecords(studio.db).save(Job(session_id, ["corporate_grey"], 1))  # queued by another replica

        def depth() -> float:
            time.sleep(1.1)  # past the scrape's one-second cache
            return scrape(server)[0][("headshot_queue_depth", ())]

        assert depth() == 1
        assert JobClaims(studio.db).cancel(session_id) == 1
        assert depth() == 0
        studio.delete_now(session_id)
    finally:
        studio.close()
