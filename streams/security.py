"""Kafka authentication and encryption (SASL PLAIN/SCRAM, TLS), read from the environment only.

Secrets never travel on the command line: the password comes from ``VALUEDRIFT_SASL_PASSWORD`` or from
the file named by ``VALUEDRIFT_SASL_PASSWORD_FILE`` (e.g. a mounted Kubernetes secret).

========================================  =====================================================
variable                                  meaning
========================================  =====================================================
``VALUEDRIFT_SECURITY_PROTOCOL``          PLAINTEXT (default), SSL, SASL_PLAINTEXT, SASL_SSL
``VALUEDRIFT_SASL_MECHANISM``             PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
``VALUEDRIFT_SASL_USERNAME``              SASL user
``VALUEDRIFT_SASL_PASSWORD[_FILE]``       SASL password, or a file holding it
``VALUEDRIFT_SSL_CAFILE``                 CA bundle that signed the brokers' certificates
``VALUEDRIFT_SSL_CERTFILE``/``_KEYFILE``  client certificate and key (mutual TLS)
========================================  =====================================================

>>> s = KafkaSecurity.from_env({"VALUEDRIFT_SECURITY_PROTOCOL": "sasl_plaintext",
...     "VALUEDRIFT_SASL_MECHANISM": "SCRAM-SHA-512", "VALUEDRIFT_SASL_USERNAME": "vd",
...     "VALUEDRIFT_SASL_PASSWORD": "s3cret"})
>>> sorted(s.aiokafka_options().items())
[('sasl_mechanism', 'SCRAM-SHA-512'), ('sasl_plain_password', 's3cret'), ('sasl_plain_username', 'vd'), \
('security_protocol', 'SASL_PLAINTEXT')]
>>> "s3cret" in repr(s)
False
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
PREFIX = "VALUEDRIFT_"


@dataclass(frozen=True)
class KafkaSecurity:
    """How clients authenticate to Kafka and whether they use TLS."""

    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"security protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if self.sasl:
            if self.mechanism not in MECHANISMS:
                raise ValueError(f"{self.protocol} needs VALUEDRIFT_SASL_MECHANISM, one of {', '.join(MECHANISMS)}; "
                                 f"got {self.mechanism!r}")
            if not self.username or self.password is None:
                raise ValueError(f"{self.protocol} needs VALUEDRIFT_SASL_USERNAME and VALUEDRIFT_SASL_PASSWORD "
                                 f"(or VALUEDRIFT_SASL_PASSWORD_FILE)")
        for name in ("cafile", "certfile", "keyfile"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise ValueError(f"VALUEDRIFT_SSL_{name.upper()}={path!r} is not a readable file")
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("mutual TLS needs both VALUEDRIFT_SSL_CERTFILE and VALUEDRIFT_SSL_KEYFILE")

    def warnings(self) -> list[str]:
        """What is allowed but unsafe: SASL credentials sent without TLS.

        >>> KafkaSecurity("SASL_PLAINTEXT", "PLAIN", "u", "p").warnings()[0][:52]
        'SASL credentials go to the broker without encryption'
        """
        if self.protocol == "SASL_PLAINTEXT":
            return ["SASL credentials go to the broker without encryption (VALUEDRIFT_SECURITY_PROTOCOL="
                    "SASL_PLAINTEXT): anyone on the network path can read them; use SASL_SSL outside a trusted "
                    "network"]
        return []

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KafkaSecurity:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(PREFIX + name)
            return value if value else None

        password = get("SASL_PASSWORD")
        pw_file = get("SASL_PASSWORD_FILE")
        if pw_file:
            try:
                password = Path(pw_file).read_text().rstrip("\r\n")
            except OSError as err:
                raise ValueError(f"VALUEDRIFT_SASL_PASSWORD_FILE={pw_file!r}: {err.strerror}") from None
        mechanism = get("SASL_MECHANISM")
        return cls(protocol=(get("SECURITY_PROTOCOL") or "PLAINTEXT").upper(),
                   mechanism=mechanism.upper() if mechanism else None, username=get("SASL_USERNAME"),
                   password=password, cafile=get("SSL_CAFILE"), certfile=get("SSL_CERTFILE"),
                   keyfile=get("SSL_KEYFILE"))

    def ssl_context(self) -> Any:
        from aiokafka.helpers import create_ssl_context

        return create_ssl_context(cafile=self.cafile, certfile=self.certfile, keyfile=self.keyfile)

    def aiokafka_options(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer/Consumer/AdminClient."""
        if self.protocol == "PLAINTEXT":
            return {}
        opts: dict[str, Any] = {"security_protocol": self.protocol}
        if self.sasl:
            opts.update(sasl_mechanism=self.mechanism, sasl_plain_username=self.username,
                        sasl_plain_password=self.password)
        if self.tls:
            opts["ssl_context"] = self.ssl_context()
        return opts

    def faust_credentials(self) -> Any:
        """Faust's ``broker_credentials`` (None for PLAINTEXT)."""
        if self.protocol == "PLAINTEXT":
            return None
        import faust

        context = self.ssl_context() if self.tls else None
        if self.sasl:
            return faust.SASLCredentials(username=self.username, password=self.password,
                                         mechanism=self.mechanism, ssl_context=context)
        return faust.SSLCredentials(context)
