"""Certificates and keys of the local control plane and of the API's edge, written as PEM files.

Two CAs, as in a kubeadm cluster: the cluster CA (apiserver serving cert, client certs for the admin, the
controller-manager and the simulator) and a separate front-proxy CA whose client cert kube-apiserver presents to
aggregated API servers (KubeVirt's `subresources.kubevirt.io`), plus the service-account signing key pair. Keys are
EC P-256 (fast to make) except the service-account key: RSA, the algorithm every Kubernetes token consumer accepts.

The edge (Envoy's public listener) has a CA of its own, `edge(...)`: what a person adds to a browser's or an OS's
trust store, or passes as `curl --cacert`, to reach `make run` over HTTPS.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)
APISERVER_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
EDGE_NAMES = ("localhost",)
EDGE_ADDRESSES = ("127.0.0.1", "::1")
EDGE_CA_RENEW_BEFORE = datetime.timedelta(days=30)
FRONT_PROXY_CLIENT_NAME = "front-proxy-client"
SIMULATOR_USER = "novasphere-simulator"


@dataclass(frozen=True)
class Pki:
    """Paths of everything `generate` writes."""

    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def ca_cert(self) -> Path:
        return self.path("ca.crt")

    @property
    def ca_key(self) -> Path:
        return self.path("ca.key")

    @property
    def apiserver_cert(self) -> Path:
        return self.path("apiserver.crt")

    @property
    def apiserver_key(self) -> Path:
        return self.path("apiserver.key")

    @property
    def admin_cert(self) -> Path:
        return self.path("admin.crt")

    @property
    def admin_key(self) -> Path:
        return self.path("admin.key")

    @property
    def controller_manager_cert(self) -> Path:
        return self.path("controller-manager.crt")

    @property
    def controller_manager_key(self) -> Path:
        return self.path("controller-manager.key")

    @property
    def simulator_cert(self) -> Path:
        return self.path("simulator.crt")

    @property
    def simulator_key(self) -> Path:
        return self.path("simulator.key")

    @property
    def front_proxy_ca_cert(self) -> Path:
        return self.path("front-proxy-ca.crt")

    @property
    def front_proxy_client_cert(self) -> Path:
        return self.path("front-proxy-client.crt")

    @property
    def front_proxy_client_key(self) -> Path:
        return self.path("front-proxy-client.key")

    @property
    def service_account_key(self) -> Path:
        return self.path("sa.key")

    @property
    def service_account_public_key(self) -> Path:
        return self.path("sa.pub")

    def issue_client(self, directory: Path, name: str, *, user: str, group: str | None = None) -> tuple[Path, Path]:
        """A client certificate from the cluster CA for `user` (in `group`), written as `directory/name.crt` and
        `.key` (for a component joining the cluster later, such as a real node's kubelet); returns both paths."""
        ca_key = serialization.load_pem_private_key(self.ca_key.read_bytes(), password=None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise TypeError(f"{self.ca_key} is not the EC key `generate` writes")
        ca_cert = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        _issue(
            key_path,
            cert_path,
            ca_key,
            ca_cert,
            common_name=user,
            organization=group,
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        )
        return cert_path, key_path


@dataclass(frozen=True)
class EdgePki:
    """The edge's CA and Envoy's serving certificate. The serving pair sits in a folder of its own, which Envoy
    watches for renewals."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def serving_cert(self) -> Path:
        return self.directory / "serving" / "tls.crt"

    @property
    def serving_key(self) -> Path:
        return self.directory / "serving" / "tls.key"


def edge(directory: Path) -> EdgePki:
    """The edge's CA (kept when `directory` already has a valid one, so whoever trusts it keeps trusting it) and a new
    serving certificate for localhost, 127.0.0.1 and ::1."""
    pki = EdgePki(directory)
    pki.serving_cert.parent.mkdir(parents=True, exist_ok=True)
    ca = _load_ca(pki.ca_key, pki.ca_cert)
    if ca is None:
        ca = self_signed_ca("NovaSphere local edge CA")
        _write(pki.ca_key, ca[0], pki.ca_cert, ca[1])
    _issue(
        pki.serving_key,
        pki.serving_cert,
        ca[0],
        ca[1],
        common_name="novasphere-api",
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        dns_names=EDGE_NAMES,
        ip_addresses=EDGE_ADDRESSES,
    )
    return pki


def _load_ca(key_path: Path, cert_path: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None:
    """A CA written earlier, if both files are there, it is an EC key and it is not about to expire."""
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return None
    remaining = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or remaining < EDGE_CA_RENEW_BEFORE:
        return None
    return key, cert


def generate(directory: Path) -> Pki:
    """Writes a fresh PKI into `directory` (private keys readable by the owner only)."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory)

    ca_key, ca_cert = self_signed_ca("novasphere-devcluster-ca")
    _write(pki.ca_key, ca_key, pki.ca_cert, ca_cert)
    _issue(
        pki.apiserver_key,
        pki.apiserver_cert,
        ca_key,
        ca_cert,
        common_name="kube-apiserver",
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        dns_names=APISERVER_NAMES,
        ip_addresses=("127.0.0.1",),
    )
    _issue(
        pki.admin_key,
        pki.admin_cert,
        ca_key,
        ca_cert,
        common_name="devcluster-admin",
        organization="system:masters",
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    _issue(  # the simulator of KubeVirt and vmoperator: cluster components, hence system:masters
        pki.simulator_key,
        pki.simulator_cert,
        ca_key,
        ca_cert,
        common_name=SIMULATOR_USER,
        organization="system:masters",
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    _issue(
        pki.controller_manager_key,
        pki.controller_manager_cert,
        ca_key,
        ca_cert,
        common_name="system:kube-controller-manager",
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )

    proxy_ca_key, proxy_ca_cert = self_signed_ca("novasphere-devcluster-front-proxy-ca")
    _write(pki.path("front-proxy-ca.key"), proxy_ca_key, pki.front_proxy_ca_cert, proxy_ca_cert)
    _issue(
        pki.front_proxy_client_key,
        pki.front_proxy_client_cert,
        proxy_ca_key,
        proxy_ca_cert,
        common_name=FRONT_PROXY_CLIENT_NAME,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(pki.service_account_key, sa_key)
    pki.service_account_public_key.write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return pki


def self_signed_ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _issue(
    key_path: Path,
    cert_path: Path,
    ca_key: CertificateIssuerPrivateKeyTypes,
    ca_cert: x509.Certificate,
    **options: Any,
) -> None:
    key, cert = issue(ca_key, ca_cert, **options)
    _write(key_path, key, cert_path, cert)


def issue(
    ca_key: CertificateIssuerPrivateKeyTypes,
    ca_cert: x509.Certificate,
    *,
    common_name: str,
    usage: x509.ObjectIdentifier,
    organization: str | None = None,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A leaf certificate signed by the CA (also used by the simulator for KubeVirt's own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attributes))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if dns_names or ip_addresses:
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _write(key_path: Path, key: ec.EllipticCurvePrivateKey, cert_path: Path, cert: x509.Certificate) -> None:
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.touch(mode=0o600)
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
