import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from deliveries.signing import signature_header
from webhookhub.web.management.base import Command as BaseCommand


class Command(BaseCommand):
    help = "A local receiver for trying webhookhub: prints every delivery and checks its signature."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=9000)
        parser.add_argument("--secret", help="the endpoint's whsec_... secret, to verify signatures")
        parser.add_argument("--status", type=int, default=200, help="the answer (400 on a bad signature)")

    def handle(self, *args, port: int, secret: str | None, status: int, **options):
        out = self.stdout

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                msg_id, timestamp = self.headers.get("webhook-id", ""), self.headers.get("webhook-timestamp", "0")
                verdict, answer = "signature not checked (no --secret)", status
                if secret:
                    expected = signature_header(secrets=[secret], msg_id=msg_id, timestamp=int(timestamp), body=body)
                    received = self.headers.get("webhook-signature", "").split()
                    verdict = "signature OK" if expected in received else "SIGNATURE MISMATCH"
                    if expected not in received:
                        answer = 400  # as a real receiver would: not from webhookhub, or the wrong secret
                try:
                    pretty = json.dumps(json.loads(body), indent=2)
                except ValueError:
                    pretty = body.decode(errors="replace")
                out.write(f"--> POST {self.path}  webhook-id={msg_id}  {verdict}  (answered {answer})\n{pretty}\n")
                out.flush()
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        out.write(f"Listening on http://127.0.0.1:{port}/ (Ctrl-C to stop)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
