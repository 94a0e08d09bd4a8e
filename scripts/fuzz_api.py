"""Fuzz the REST API with schemathesis against a live server; exit non-zero on any failure.

    scripts/fuzz-api            (what .ci/run runs; extra arguments go to ``schemathesis run``)

Every operation, every check (``object_level_authorization`` too: a second tenant's admin key
is configured as its peer), stateful phase on, a fixed seed and example count so a run is
repeatable and takes a few minutes. The server is gunicorn with DEBUG off, on its own database:
``webhookhub_fuzz`` (or FUZZ_DATABASE) on the PostgreSQL server DATABASE_URL names, or a SQLite
file under var/fuzz/ (or FUZZ_WORK) when DATABASE_URL is unset; FUZZ_PORT, FUZZ_DATABASE and
FUZZ_WORK let runs side by side keep apart. Configuration, and the deliberate exclusions with
their reasons, are in tests/fuzz/schemathesis.toml.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("FUZZ_WORK", ROOT / "var" / "fuzz"))
DATABASE = os.environ.get("FUZZ_DATABASE", "webhookhub_fuzz")
PORT = int(os.environ.get("FUZZ_PORT", "8765"))
SEED = os.environ.get("FUZZ_SEED", "20261201")
MAX_EXAMPLES = os.environ.get("FUZZ_MAX_EXAMPLES", "50")
BIN = Path(sys.executable).parent


def _database_url() -> str:
    given = os.environ.get("DATABASE_URL", "")
    if not given.startswith("postgres"):
        return f"sqlite:///{WORK / 'fuzz.sqlite3'}"
    import dj_database_url
    import psycopg
    from psycopg import sql

    db = dj_database_url.parse(given)
    params = {"host": db["HOST"], "port": db["PORT"] or 5432, "user": db["USER"], "password": db["PASSWORD"] or None}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    return given.rsplit("/", 1)[0] + "/" + DATABASE


def _environment() -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": _database_url(), "DEBUG": "false", "WEBHOOKHUB_ENV": "development"}
    env.pop("CELERY_BROKER_URL", None)  # the embedded filesystem broker: nothing consumes the doorbells
    env["WEBHOOKHUB_BROKER_DIR"] = str(WORK / "broker")
    env.setdefault("WEBHOOKHUB_API_KEY_RATE", "100000/min")  # the fuzzer is not a throttle test
    env.setdefault("WEBHOOKHUB_PUBLISH_RATE", "100000/min")
    return env


# Each tenant gets an admin key and one of everything (an endpoint with a delivery, an event, a
# trigger): the fuzzer cannot create an endpoint itself (its generated URLs fail the address policy),
# and the tenant-crossing check needs objects that one tenant's lists show and the other's do not.
# The endpoint has every setting a read shows (OAuth2 auth, mutual TLS, both signature schemes), so
# that reads of it are checked against the schema with them.
SETUP = """
import json
from events.triggers import create_trigger
from tests.support.tls import CertificateAuthority
from subscriptions.services import create_endpoint
from webhookhub import publish
from accounts.models import Tenant
from accounts.services import create_api_key
keys, ids = {}, {}
ca = CertificateAuthority()
pair = ca.issue("fuzzer")
oauth2 = {"token_url": "https://93.184.216.34/token", "client_id": "fuzzer", "client_secret": "fuzz-secret-0123"}
for slug in ("fuzz-a", "fuzz-b"):
    tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": slug})
    key = create_api_key(tenant=tenant, name="fuzzer")
    keys[slug] = key.key
    endpoint = create_endpoint(
        tenant=tenant, url="https://93.184.216.34/hook", event_types=["message.received"], auth_type="oauth2",
        auth=oauth2, signature_scheme="both", tls_client_certificate=pair.certificate, tls_client_key=pair.key,
        tls_ca_certificate=ca.certificate,
    )
    event = publish(tenant=tenant, type="message.received", data={"text": "hello"})
    trigger = create_trigger(tenant=tenant, name="crm", event_type="contact.created",
                             sample={"contact": {"phone": "+1555"}}, identifier="contact.phone",
                             mapping={"contact.phone": "phone"})
    ids[slug] = {"ENDPOINT": endpoint.endpoint.pk, "EVENT": event.pk, "DELIVERY": event.deliveries.get().pk,
                 "TRIGGER": trigger.trigger.pk, "API_KEY": key.api_key.pk}
print(json.dumps({"keys": keys, "ids": ids}))
"""


def main() -> int:
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "fuzz.sqlite3").unlink(missing_ok=True)
    env = _environment()
    manage = [str(BIN / "python"), "manage.py"]
    subprocess.run([*manage, "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True)
    made = json.loads(
        subprocess.run([*manage, "shell", "-c", SETUP], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        .stdout.strip()
        .splitlines()[-1]
    )
    keys = made["keys"]
    # Tenant A's objects, named in tests/fuzz/schemathesis.toml, so that detail reads reach a real object
    # (and the tenant-crossing check has reads of a known owner's object to replay with B's key).
    env.update({f"FUZZ_{kind}_ID": str(pk) for kind, pk in made["ids"]["fuzz-a"].items()})
    auth = {
        "auth": [
            {"name": slug, "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {key}"}]}
            for slug, key in keys.items()
        ]
    }
    (WORK / "auth.json").write_text(json.dumps(auth))
    env["FUZZ_AUTH_FILE"] = str(WORK / "auth.json")
    server = subprocess.Popen(
        # gunicorn's own 414/431 for a request line or header over 4 KiB are HTML from gunicorn, not the app:
        # the limits are lifted so that the fuzzer's long queries reach the app, which is what is tested.
        [
            str(BIN / "gunicorn"),
            "webhookhub.wsgi",
            "-b",
            f"127.0.0.1:{PORT}",
            "-w",
            "2",
            "--timeout",
            "120",
            "--limit-request-line",
            "0",
            "--limit-request-field_size",
            "0",
        ],
        cwd=ROOT,
        env=env,
        stdout=(WORK / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        schema = f"http://127.0.0.1:{PORT}/api/v1/schema/?format=json"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(schema, timeout=5).read()  # noqa: S310 - loopback
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    print((WORK / "server.log").read_text()[-3000:])
                    return 2
                time.sleep(0.5)
        run = [
            str(BIN / "schemathesis"),
            "--config-file",
            str(ROOT / "tests" / "fuzz" / "schemathesis.toml"),
            "run",
            schema,
            "--url",
            f"http://127.0.0.1:{PORT}",
            "--seed",
            SEED,
            "--max-examples",
            MAX_EXAMPLES,
            "--report",
            "junit",
            "--report-dir",
            str(WORK / "report"),
        ]
        failed = subprocess.run([*run, *sys.argv[1:]], cwd=ROOT, env=env).returncode
        errors = [line for line in (WORK / "server.log").read_text().splitlines() if "Internal Server Error" in line]
        if errors:
            print(f"The server logged {len(errors)} internal error(s); see {WORK / 'server.log'}.")
        return failed or (1 if errors else 0)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
