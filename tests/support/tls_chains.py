"""Certificates beyond ``tests.support.tls``: a root CA with an intermediate CA under it (client certificates
that need the intermediate sent along), and server certificates for names of one's choosing."""

import datetime as dt
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.support.tls import Pair, ca_key_usage, pem_key, subject


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _signed(builder: x509.CertificateBuilder, issuer_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    return builder.sign(issuer_key, hashes.SHA256())


def _builder(common_name: str, issuer: x509.Name, public_key, days: int = 30) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject(common_name))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
    )


class ChainedAuthority:
    """A root CA and an intermediate CA it signed; leaf certificates are signed by the intermediate."""

    def __init__(self, name: str = "webhookhub chained test") -> None:
        self._root_key = ec.generate_private_key(ec.SECP256R1())
        root_name = subject(f"{name} root")
        root = _builder(f"{name} root", root_name, self._root_key.public_key(), days=365)
        root = root.add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        root = root.add_extension(ca_key_usage(), critical=True)
        self.root_certificate = _pem(_signed(root, self._root_key))
        self._intermediate_key = ec.generate_private_key(ec.SECP256R1())
        self._intermediate_name = subject(f"{name} intermediate")
        intermediate = _builder(f"{name} intermediate", root_name, self._intermediate_key.public_key(), days=365)
        intermediate = intermediate.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        intermediate = intermediate.add_extension(ca_key_usage(), critical=True)
        self.intermediate_certificate = _pem(_signed(intermediate, self._root_key))

    def issue_client(self, common_name: str) -> Pair:
        """A client certificate by the intermediate: the PEM holds the leaf, then the intermediate."""
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = _builder(common_name, self._intermediate_name, key.public_key())
        leaf = leaf.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        leaf = leaf.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        return Pair(_pem(_signed(leaf, self._intermediate_key)) + self.intermediate_certificate, pem_key(key))

    def issue_server(self, *names: str, alternative_names: bool = True) -> Pair:
        """A server certificate by the intermediate for ``names`` (DNS names or IP addresses), with the chain;
        without ``alternative_names``, the first name only as its subject's common name (as before RFC 2818)."""
        key = ec.generate_private_key(ec.SECP256R1())
        alternatives: list[x509.GeneralName] = []
        for name in names:
            try:
                alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alternatives.append(x509.DNSName(name))
        leaf = _builder(names[0], self._intermediate_name, key.public_key())
        leaf = leaf.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        leaf = leaf.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        if alternative_names:
            leaf = leaf.add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        return Pair(_pem(_signed(leaf, self._intermediate_key)) + self.intermediate_certificate, pem_key(key))
