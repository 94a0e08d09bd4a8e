"""manage.py receive_webhooks: prints what arrives, and answers 400 to a bad signature as a real receiver would."""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

from deliveries.signing import signature_header
from tests.support import processes

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _post(port: int, signature: str) -> int:
    body = json.dumps({"type": "message.received", "data": {}}).encode()
    timestamp = int(time.time())
    if signature == "good":
        signature = signature_header(secrets=[SECRET], msg_id="evt_1", timestamp=timestamp, body=body)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/hook",
        data=body,
        headers={"webhook-id": "evt_1", "webhook-timestamp": str(timestamp), "webhook-signature": signature},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_demo_receiver_accepts_a_good_signature_and_refuses_a_bad_one(tmp_path):
    port = processes.free_port()
    log = (tmp_path / "receiver.log").open("wb")
    receiver = subprocess.Popen(
        [sys.executable, "manage.py", "receive_webhooks", "--port", str(port), "--secret", SECRET],
        cwd=processes.ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=processes.process_env(),
    )
    try:
        deadline = time.monotonic() + 20
        while "Listening" not in (tmp_path / "receiver.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "receiver.log").read_text()
            time.sleep(0.1)
        statuses = [_post(port, "good"), _post(port, "v1,AAAA")]
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)

    printed = (tmp_path / "receiver.log").read_text()
    assert statuses == [200, 400]
    assert "signature OK  (answered 200)" in printed and "SIGNATURE MISMATCH  (answered 400)" in printed
