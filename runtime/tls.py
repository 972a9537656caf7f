"""TLS: ``--tls-cert``/``--tls-key`` (and ``--tls-ca`` for client certificates), ``--auto-tls``.

Each worker builds its own ``ssl.SSLContext`` from the paths (:func:`server_context`): a context
cannot cross a process boundary, paths can. The main process checks the files once first
(:func:`check_files`), so that a wrong path or a key that does not fit the certificate is one
clear error before anything starts.

``--auto-tls`` (:func:`auto_tls`) is for development: a local certificate authority and a
certificate for ``localhost``, ``127.0.0.1`` and ``::1``, made with ``mkcert`` when it is
installed (its CA is the one ``mkcert -install`` made trusted) or else with ``trustme``, kept in
the user's state directory (``$XDG_STATE_HOME/vivace/tls`` or ``~/.local/state/vivace/tls``) and
reused while valid. How to trust the CA is printed once, when it is made.
"""

from __future__ import annotations

import datetime
import os
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import NamedTuple

from runtime.exceptions import ConfigError

__all__ = [
    "AUTO_TLS_NAMES",
    "AutoTLS",
    "auto_tls",
    "auto_tls_ca",
    "check_files",
    "client_context",
    "server_context",
    "state_dir",
    "trust_instructions",
]

#: what an ``--auto-tls`` certificate is valid for
AUTO_TLS_NAMES = ("localhost", "127.0.0.1", "::1")
#: a certificate that expires sooner than this is made again
RENEW_BEFORE = datetime.timedelta(days=7)


def server_context(cert: str, key: str, ca: str | None = None) -> ssl.SSLContext:
    """The server's context: the certificate chain and key; with ``ca``, clients must present a
    certificate that ``ca`` signed. Raises ``OSError`` / ``ssl.SSLError`` (see :func:`check_files`
    for the message a user gets)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    if ca is not None:
        context.load_verify_locations(cafile=ca)
        context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["http/1.1"])
    return context


def check_files(cert: str | None, key: str | None, ca: str | None = None) -> None:
    """``ConfigError`` with one clear message when the TLS files cannot serve."""
    if not cert or not key:
        missing = "--tls-key" if cert else "--tls-cert"
        raise ConfigError(f"TLS needs both --tls-cert and --tls-key ({missing} is missing)")
    for option, path in (("--tls-cert", cert), ("--tls-key", key), ("--tls-ca", ca)):
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"{option} {path}: no such file")
    try:
        server_context(cert, key, None)
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
        raise ConfigError(
            f"--tls-cert {cert} / --tls-key {key}: cannot be loaded ({reason}); give a PEM "
            "certificate chain and the PEM private key that belongs to it"
        ) from None
    if ca is not None:
        try:
            ssl.create_default_context(cafile=ca)
        except (ssl.SSLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            raise ConfigError(f"--tls-ca {ca}: cannot be loaded ({reason})") from None


def state_dir() -> Path:
    """Where vivace keeps state: ``$XDG_STATE_HOME/vivace`` or ``~/.local/state/vivace``."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "vivace"


class AutoTLS(NamedTuple):
    """The files of ``--auto-tls`` and whether they were made by this call."""

    cert: str
    key: str
    ca: str
    created: bool
    maker: str


def _valid(cert: Path) -> bool:
    try:
        from cryptography import x509

        loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    except (OSError, ValueError, ImportError):
        return False
    expires = loaded.not_valid_after_utc
    return expires - datetime.datetime.now(datetime.timezone.utc) > RENEW_BEFORE


def _with_mkcert(mkcert: str, where: Path) -> Path:
    """Make the certificate with mkcert; the path of mkcert's CA."""
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [mkcert, "-cert-file", str(cert), "-key-file", str(key), *AUTO_TLS_NAMES],
        check=True,
        capture_output=True,
        timeout=60,
    )
    caroot = subprocess.run(
        [mkcert, "-CAROOT"], check=True, capture_output=True, text=True, timeout=60
    ).stdout.strip()
    return Path(caroot) / "rootCA.pem"


def _with_trustme(where: Path) -> Path:
    try:
        import trustme
    except ImportError:
        raise ConfigError(
            "--auto-tls needs trustme (pip install trustme) or mkcert on the PATH"
        ) from None
    ca = trustme.CA(organization_name="vivace development CA")
    leaf = ca.issue_cert(
        *AUTO_TLS_NAMES,
        not_after=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=825),
    )
    ca_file = where / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with open(where / "cert.pem", "wb") as fh:
        for pem in leaf.cert_chain_pems:
            fh.write(pem.bytes())
    fd = os.open(where / "key.pem", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(leaf.private_key_pem.bytes())
    return ca_file


def auto_tls(directory: Path | None = None) -> AutoTLS:
    """The ``--auto-tls`` files, made when missing or about to expire, else reused."""
    where = (directory or state_dir()) / "tls"
    cert, key, ca_link = where / "cert.pem", where / "key.pem", where / "ca-path"
    if cert.is_file() and key.is_file() and ca_link.is_file() and _valid(cert):
        ca = ca_link.read_text().strip()
        if os.path.isfile(ca):
            return AutoTLS(str(cert), str(key), ca, False, "reused")
    try:
        where.mkdir(parents=True, exist_ok=True)
        mkcert = shutil.which("mkcert")
        if mkcert is not None:
            ca_file, maker = _with_mkcert(mkcert, where), "mkcert"
        else:
            ca_file, maker = _with_trustme(where), "trustme"
        ca_link.write_text(str(ca_file) + "\n")
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"--auto-tls could not make a certificate in {where}: {exc}") from None
    return AutoTLS(str(cert), str(key), str(ca_file), True, maker)


def trust_instructions(made: AutoTLS) -> str:
    """What to tell the user once, when ``--auto-tls`` made its files."""
    if made.maker == "mkcert":
        return (
            f"--auto-tls: made a certificate for {', '.join(AUTO_TLS_NAMES)} with mkcert "
            f"({made.cert}); run 'mkcert -install' once if your browser does not trust it yet"
        )
    return (
        f"--auto-tls: made a local certificate authority ({made.ca}) and a certificate for "
        f"{', '.join(AUTO_TLS_NAMES)}; they are reused from now on. To trust it: "
        f"curl --cacert {made.ca} ..., "
        f"httpx.Client(verify=ssl.create_default_context(cafile='{made.ca}')), "
        f"SSL_CERT_FILE={made.ca} for Python tools, or add it to your system "
        f"(Debian/Ubuntu: sudo cp {made.ca} /usr/local/share/ca-certificates/vivace-dev.crt "
        "&& sudo update-ca-certificates) or browser store"
    )


def auto_tls_ca(directory: Path | None = None) -> str | None:
    """The CA file of ``--auto-tls`` when it was made (for a client such as the console)."""
    link = (directory or state_dir()) / "tls" / "ca-path"
    try:
        ca = link.read_text().strip()
    except OSError:
        return None
    return ca if os.path.isfile(ca) else None


def client_context(ca: str | None = None) -> ssl.SSLContext:
    """A client context trusting the system's CAs and ``ca`` (default: the ``--auto-tls`` CA)."""
    context = ssl.create_default_context()
    extra = ca or auto_tls_ca()
    if extra is not None:
        context.load_verify_locations(cafile=extra)
    return context
