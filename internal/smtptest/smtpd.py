"""A real SMTP server for the tests (aiosmtpd, Debian's python3-aiosmtpd).

usage: smtpd.py MODE PORT MAILDIR CERT KEY [USER:PASSWORD]

MODE is starttls (STARTTLS required before MAIL), smtps (TLS from the first
byte) or plain. With USER:PASSWORD, AUTH is required and only accepted over
TLS. Every accepted message is stored in the Maildir. Prints "ready" when
listening and runs until stdin closes.
"""
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult


def main():
    mode, port, maildir, cert, key = sys.argv[1:6]
    creds = sys.argv[6] if len(sys.argv) > 6 else None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    kw = {}
    if mode == "starttls":
        kw.update(tls_context=ctx, require_starttls=True)
    elif mode == "smtps":
        kw.update(ssl_context=ctx)
    elif mode != "plain":
        sys.exit("unknown mode " + mode)
    if creds:
        user, password = creds.split(":", 1)

        def check(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login.decode() == user and auth_data.password.decode() == password
            return AuthResult(success=ok, handled=False)  # False: the server answers 535

        # aiosmtpd 1.4 counts only STARTTLS as encryption for AUTH; in
        # smtps mode the whole connection is TLS already.
        kw.update(authenticator=check, auth_required=True, auth_require_tls=(mode == "starttls"))
    c = Controller(Mailbox(maildir), hostname="127.0.0.1", port=int(port), server_hostname="localhost", **kw)
    c.start()
    print("ready", flush=True)
    sys.stdin.read()
    c.stop()


if __name__ == "__main__":
    main()
