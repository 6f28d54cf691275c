"""A small SMTP server for swivel-provision-smtp's integration tests (aiosmtpd).

Listens on 127.0.0.1:PORT. Every accepted message is written to OUTDIR as NAME.eml, with
NAME.json beside it: {"mail_from", "rcpt_tos", "tls", "auth_mechanism", "auth_login"}.
Prints "READY" on stdout once it accepts connections, and stops when stdin closes (so it
never outlives the test process).

Options:
  --starttls CERT KEY      offer (and require) STARTTLS with this certificate chain and key
  --implicit-tls CERT KEY  TLS from the first byte instead
  --auth USER PASSWORD     require AUTH (PLAIN or LOGIN) with these credentials
  --tempfail-domain D      answer 451 to recipients @D
  --permfail-domain D      answer 550 to recipients @D
  --echo-reject            answer 554 to DATA, quoting the body's "Provision code" line
"""

import argparse
import json
import logging
import os
import ssl
import sys
import uuid

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Handler:
    def __init__(self, outdir, tempfail, permfail, echo_reject):
        self.outdir = outdir
        self.tempfail = tempfail
        self.permfail = permfail
        self.echo_reject = echo_reject

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        domain = address.rpartition("@")[2].lower()
        if self.tempfail and domain == self.tempfail:
            return "451 4.3.0 Mailbox temporarily unavailable, try again later"
        if self.permfail and domain == self.permfail:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8")
        if self.echo_reject:
            quoted = "no code line"
            for line in data.decode("utf-8", "replace").splitlines():
                if "Provision code" in line:
                    quoted = line.strip()
                    break
            return "554 5.6.0 Rejected: " + quoted
        name = uuid.uuid4().hex
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            # session.ssl is set after STARTTLS only; implicit TLS shows on the transport.
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            "auth_mechanism": getattr(session, "swivel_auth_mechanism", None),
            "auth_login": getattr(session, "swivel_auth_login", None),
        }
        # Write under a temporary name, then rename: readers never see half a file.
        for ext, content in ((".eml", data), (".json", json.dumps(meta).encode())):
            tmp = os.path.join(self.outdir, "." + name + ext + ".tmp")
            with open(tmp, "wb") as f:
                f.write(content)
            os.replace(tmp, os.path.join(self.outdir, name + ext))
        return "250 Message accepted for delivery"


class Authenticator:
    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login == self.user and auth_data.password == self.password
        if ok:
            session.swivel_auth_mechanism = mechanism
            session.swivel_auth_login = auth_data.login.decode()
        # handled=False lets aiosmtpd answer "535 5.7.8 Authentication credentials invalid"
        # and keep the connection open.
        return AuthResult(success=ok, handled=False)


def tls_context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def main():
    # aiosmtpd logs a warning about its own use of a deprecated attribute on every login.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("outdir")
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--implicit-tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--auth", nargs=2, metavar=("USER", "PASSWORD"))
    p.add_argument("--tempfail-domain")
    p.add_argument("--permfail-domain")
    p.add_argument("--echo-reject", action="store_true")
    a = p.parse_args()

    handler = Handler(a.outdir, a.tempfail_domain, a.permfail_domain, a.echo_reject)
    kwargs = {}
    if a.starttls:
        kwargs["tls_context"] = tls_context(*a.starttls)
        kwargs["require_starttls"] = True
    if a.implicit_tls:
        kwargs["ssl_context"] = tls_context(*a.implicit_tls)
    if a.auth:
        kwargs["authenticator"] = Authenticator(*a.auth)
        kwargs["auth_required"] = True
        # With STARTTLS, AUTH is offered only after it. (aiosmtpd does not count implicit
        # TLS as TLS for this check; the whole session is encrypted there anyway.)
        kwargs["auth_require_tls"] = not a.implicit_tls
    controller = Controller(handler, hostname="127.0.0.1", port=a.port, ready_timeout=60, **kwargs)
    controller.start()
    print("READY", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
