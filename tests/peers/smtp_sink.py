"""An SMTP server for the tests (aiosmtpd): every message it accepts is
written to DIR as NNNN.json, decoded by Python's email package: envelope,
login, whether TLS was on, headers, the text body and the attachments
(each also written beside it as NNNN-I.bin).

    smtp_sink.py --port P --dir DIR [--auth USER:PASS] [--starttls CERT KEY]

Prints "ready PORT" once listening; runs until killed.
"""
import argparse
import warnings
import asyncio
import email
import email.policy
import json
import itertools
import os
import ssl

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

# aiosmtpd 1.4 warns about its own deprecated attribute on every login.
warnings.simplefilter("ignore")


class Sink:
    def __init__(self, out):
        self.out = out
        self.n = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        path = os.path.join(self.out, "%04d.json" % next(self.n))
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_to": envelope.rcpt_tos,
            "login": session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None,
            "tls": session.ssl is not None,
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "subject": str(msg["Subject"]),
            "message_id": str(msg["Message-ID"]),
            "content_type": msg.get_content_type(),
            "body": msg.get_body(preferencelist=("plain",)).get_content(),
            "attachments": [],
        }
        for i, part in enumerate(msg.iter_attachments()):
            data = part.get_content()
            if isinstance(data, str):
                data = data.encode()
            file = "%s-%d.bin" % (path[:-5], i)
            with open(file, "wb") as f:
                f.write(data)
            record["attachments"].append({
                "filename": part.get_filename(),
                "content_type": part.get_content_type(),
                "bytes": len(data),
                "file": file,
            })
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False)
        os.rename(tmp, path)
        return "250 Message accepted for delivery"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--auth")
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    a = p.parse_args()
    kwargs = {}
    if a.auth:
        user, password = a.auth.split(":", 1)

        def check(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
                and auth_data.password.decode() == password
            return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

        kwargs.update(authenticator=check, auth_required=True, auth_require_tls=bool(a.starttls))
    if a.starttls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*a.starttls)
        kwargs.update(tls_context=ctx, require_starttls=True)
    c = Controller(Sink(a.dir), hostname="127.0.0.1", port=a.port, **kwargs)
    c.start()
    print("ready %d" % a.port, flush=True)
    try:
        asyncio.new_event_loop().run_forever()
    finally:
        c.stop()


if __name__ == "__main__":
    main()
