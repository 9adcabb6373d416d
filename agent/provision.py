"""``bedside provision``: what one site needs to run mosquitto with TLS, identities and ACLs.

Writes, into one folder (a site's secrets: keep it off the beds, copy each bed only its own
files):

- ``ca.crt`` / ``ca.key``: the site CA (reused when the folder already has one, so beds and
  stations can be added later without re-issuing the others);
- ``broker/broker.crt`` / ``.key``: the broker's server certificate, with the host names and
  addresses the clients use (subject alternative names, checked by the clients' TLS);
- ``beds/UNIT.BED.crt`` / ``.key`` / ``.toml``: one client certificate per bed, identity
  (certificate CN, used by mosquitto as the user name) ``bed.UNIT.BED``, and the ``[mqtt]``
  section of its agent configuration;
- ``stations/NAME.crt`` / ``.key``: one per station, identity ``station.NAME``;
- ``mosquitto.conf`` and ``acl``: TLS only, ``require_certificate true``,
  ``use_identity_as_username true``, ``allow_anonymous false``, persistence on (the agents'
  sessions and queued acknowledgements survive a broker restart), and per-identity ACLs: a bed
  writes only its own ``status``, ``vitals``, ``alarms``, ``alarms/active`` and ``ecg`` and reads
  only its own ``alarms/ack``, ``observations`` and ``ecg/control``; a station reads its units
  and is the only identity that may write ``alarms/ack``, ``observations`` and ``ecg/control``
  (the live ECG lease), for the units it serves.

Identities use dots (``bed.ward1.bed3``) because unit and bed names cannot contain one
(:func:`agent.messages.validate_bed_segment`): no two beds can map to one identity.

Cryptography is the ``cryptography`` library (X.509 builder, EC P-256 keys); nothing is
hand-written. Validity: leaf certificates 397 days (the CA/Browser Forum Baseline Requirements
6.3.2 cap for TLS server certificates, adopted here for every leaf so that renewal is a yearly
routine), the CA 10 years.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.errors import BedsideError
from agent.messages import TOPIC_ROOT, validate_bed_identity, validate_bed_segment

__all__ = [
    "SiteFiles",
    "StationSpec",
    "bed_identity",
    "parse_station",
    "provision_site",
    "station_identity",
]

LEAF_VALIDITY_DAYS: Final = 397
"""CA/Browser Forum Baseline Requirements 6.3.2 (TLS server certificates, from 2020-09-01)."""

CA_VALIDITY_DAYS: Final = 3650
"""Ten years: the site CA outlives many leaf renewals; re-provisioning reuses it."""

BED_WRITE_TOPICS: Final = ("status", "vitals", "alarms", "alarms/active", "ecg")
BED_READ_TOPICS: Final = ("alarms/ack", "observations", "ecg/control")
STATION_WRITE_TOPICS: Final = ("alarms/ack", "observations", "ecg/control")


class ProvisionError(BedsideError):
    """A provisioning argument is invalid or a file cannot be written."""


@dataclass(frozen=True)
class StationSpec:
    """A station and the units it serves."""

    name: str
    units: tuple[str, ...]


@dataclass(frozen=True)
class SiteFiles:
    """Where :func:`provision_site` wrote things."""

    folder: Path
    ca_cert: Path
    mosquitto_conf: Path
    acl: Path
    beds: dict[str, tuple[Path, Path]]
    stations: dict[str, tuple[Path, Path]]


def bed_identity(unit: str, bed: str) -> str:
    """Return a bed's certificate CN / broker user name, ``bed.UNIT.BED``."""
    return f"bed.{unit}.{bed}"


def station_identity(name: str) -> str:
    """Return a station's certificate CN / broker user name, ``station.NAME``."""
    return f"station.{name}"


def parse_station(text: str, default_units: Sequence[str]) -> StationSpec:
    """Parse ``NAME`` or ``NAME:UNIT[,UNIT...]``.

    Raises
    ------
    ProvisionError
        If a name or unit is not a valid topic segment.
    """
    name, _, units_text = text.partition(":")
    units = tuple(u for u in units_text.split(",") if u) if units_text else tuple(default_units)
    try:
        validate_bed_segment(name, "station")
        for unit in units:
            validate_bed_segment(unit, "unit")
    except ValueError as err:
        raise ProvisionError(str(err)) from err
    if not units:
        msg = f"station {name!r} serves no unit: give NAME:UNIT[,UNIT...]"
        raise ProvisionError(msg)
    return StationSpec(name, units)


def _ext(stem: Path, suffix: str) -> Path:
    """``stem`` + ``suffix`` (``with_suffix`` would eat the ``.BED`` of ``UNIT.BED``)."""
    return stem.parent / (stem.name + suffix)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bedside site"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _load_or_make_ca(folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = folder / "ca.crt", folder / "ca.key"
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            msg = f"{key_path} is not an EC private key made by bedside provision"
            raise ProvisionError(msg)
        return cert, key
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("bedside site CA"))
        .issuer_name(_name("bedside site CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return cert, key


def _leaf(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    cn: str,
    *,
    server_names: Sequence[str] = (),
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = ca
    key = _key()
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server_names else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=LEAF_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server_names:
        alt: list[x509.GeneralName] = []
        for host in server_names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                alt.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def acl_text(beds: Sequence[tuple[str, str]], stations: Sequence[StationSpec]) -> str:
    """Return the mosquitto ACL file: one ``user`` block per bed and per station."""
    lines = [
        "# bedside provision: per-identity ACLs (mosquitto acl_file).",
        "# Identities are certificate CNs (use_identity_as_username true).",
        "",
    ]
    for unit, bed in beds:
        base = f"{TOPIC_ROOT}/{unit}/{bed}"
        lines.append(f"user {bed_identity(unit, bed)}")
        lines += [f"topic write {base}/{kind}" for kind in BED_WRITE_TOPICS]
        lines += [f"topic read {base}/{kind}" for kind in BED_READ_TOPICS]
        lines.append("")
    for station in stations:
        lines.append(f"user {station_identity(station.name)}")
        for unit in station.units:
            lines.append(f"topic read {TOPIC_ROOT}/{unit}/#")
            lines += [f"topic write {TOPIC_ROOT}/{unit}/+/{kind}" for kind in STATION_WRITE_TOPICS]
        lines.append("")
    return "\n".join(lines)


def mosquitto_conf_text(folder: Path, *, port: int, bind: str) -> str:
    """Return a mosquitto 2.x configuration for the site folder (TLS, no anonymous, ACLs)."""
    return "\n".join(
        [
            "# bedside provision: mosquitto 2.x, TLS with client certificates only.",
            "per_listener_settings false",
            "allow_anonymous false",
            f"acl_file {folder / 'acl'}",
            "persistence true",
            f"persistence_location {folder / 'data'}/",
            f"listener {port} {bind}",
            f"cafile {folder / 'ca.crt'}",
            f"certfile {folder / 'broker' / 'broker.crt'}",
            f"keyfile {folder / 'broker' / 'broker.key'}",
            "require_certificate true",
            "use_identity_as_username true",
            "tls_version tlsv1.2",
            "",
        ]
    )


def _bed_toml(folder: Path, unit: str, bed: str, host: str, port: int) -> str:
    stem = folder / "beds" / f"{unit}.{bed}"
    return "\n".join(
        [
            "# the [bed] and [mqtt] sections of this bed's agent configuration",
            "[bed]",
            f'unit = "{unit}"',
            f'bed = "{bed}"',
            "",
            "[mqtt]",
            f'url = "mqtts://{host}:{port}"',
            f'tls_ca_file = "{folder / "ca.crt"}"',
            f'tls_cert_file = "{stem}.crt"',
            f'tls_key_file = "{stem}.key"',
            "",
        ]
    )


def provision_site(
    folder: Path,
    beds: Sequence[tuple[str, str]],
    stations: Sequence[StationSpec],
    *,
    broker_hosts: Sequence[str] = ("localhost", "127.0.0.1"),
    port: int = 8883,
    bind: str = "0.0.0.0",  # noqa: S104 - a site broker serves the ward network
) -> SiteFiles:
    """Write a site's CA, certificates, mosquitto.conf and ACL file into ``folder``.

    Parameters
    ----------
    folder
        Output folder (created); an existing CA in it is reused.
    beds
        ``(unit, bed)`` pairs.
    stations
        Stations and the units each serves.
    broker_hosts
        Names and addresses clients use to reach the broker (the first is put in the beds'
        TOML files).
    port, bind
        The broker's TLS listener.

    Raises
    ------
    ProvisionError
        If a name is not a valid topic segment, nothing is to be provisioned, or a file cannot
        be written.
    """
    if not beds and not stations:
        msg = "nothing to provision: give at least one --bed or --station"
        raise ProvisionError(msg)
    try:
        for unit, bed in beds:
            validate_bed_segment(unit, "unit")
            validate_bed_segment(bed, "bed")
            validate_bed_identity(unit, bed)  # no patient names (lowercase identifiers)
    except ValueError as err:
        raise ProvisionError(str(err)) from err
    if not broker_hosts:
        msg = "give at least one --broker-host"
        raise ProvisionError(msg)
    folder = folder.resolve()
    try:
        for sub in ("broker", "beds", "stations", "data"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        ca = _load_or_make_ca(folder)
        cert, key = _leaf(ca, "bedside broker", server_names=broker_hosts)
        _write_cert(folder / "broker" / "broker.crt", cert)
        _write_key(folder / "broker" / "broker.key", key)
        bed_files: dict[str, tuple[Path, Path]] = {}
        for unit, bed in beds:
            stem = folder / "beds" / f"{unit}.{bed}"
            cert, key = _leaf(ca, bed_identity(unit, bed))
            _write_cert(_ext(stem, ".crt"), cert)
            _write_key(_ext(stem, ".key"), key)
            _ext(stem, ".toml").write_text(
                _bed_toml(folder, unit, bed, broker_hosts[0], port), encoding="utf-8"
            )
            bed_files[f"{unit}/{bed}"] = (_ext(stem, ".crt"), _ext(stem, ".key"))
        station_files: dict[str, tuple[Path, Path]] = {}
        for station in stations:
            stem = folder / "stations" / station.name
            cert, key = _leaf(ca, station_identity(station.name))
            _write_cert(_ext(stem, ".crt"), cert)
            _write_key(_ext(stem, ".key"), key)
            station_files[station.name] = (_ext(stem, ".crt"), _ext(stem, ".key"))
        acl = folder / "acl"
        acl.write_text(acl_text(beds, stations), encoding="utf-8")
        conf = folder / "mosquitto.conf"
        conf.write_text(mosquitto_conf_text(folder, port=port, bind=bind), encoding="utf-8")
    except OSError as err:
        msg = f"cannot write the site files in {folder}: {err.strerror or err}"
        raise ProvisionError(msg) from err
    return SiteFiles(folder, folder / "ca.crt", conf, acl, bed_files, station_files)
