"""The peripheral inventory: the USB and USB-serial devices a terminal must have.

A requirement names a device by `vendor_product` ("vvvv:pppp", globs allowed), optionally its
`serial` (glob) and the `port` it sits on (the sysfs name, "1-1.2": bus 1, port 1, hub port 2 —
the physical socket). Requirements come from `[[collectors.usb.required]]` and from the file
`sentinel inventory accept` writes (`state_dir/peripherals.json`: the devices present then, each
on its port). Judged against what is present:

- with a port: the device there must match; nothing there is `required_missing`, another device
  (or the same model with another serial) there is `identity_changed` — the skimmer case;
- without a port: some device must match; none is `required_missing`, unless the same model with
  another serial is present (`identity_changed`).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

import structlog

from sentinel.core.files import Directory
from sentinel.core.settings import KeyPath, field, non_empty

log = structlog.get_logger("sentinel.collectors.usb")

Role = Literal["card_reader", "pin_pad", "receipt_printer", "cash_dispenser", "scanner", "keyboard", "other"]
ROLES: tuple[str, ...] = get_args(Role)
LEARNED_FILE = "peripherals.json"
CLASS_ROLES = {"0b": "card_reader", "07": "receipt_printer"}  # USB interface classes: smart card, printer


@dataclass(frozen=True, slots=True)
class RequiredDevice:
    """One `[[collectors.usb.required]]` entry (or one accepted device)."""

    name: str = field(check=non_empty)
    vendor_product: str = field(check=non_empty)
    role: Role = "other"
    serial: str = ""  # glob; empty: any serial
    port: str = ""  # sysfs port name; empty: any port

    def validate(self) -> list[tuple[KeyPath, str]]:
        """`vendor_product` is "vvvv:pppp" (globs allowed)."""
        vendor, sep, product = self.vendor_product.partition(":")
        if not sep or not vendor or not product:
            return [(("vendor_product",), f'expected "vvvv:pppp", got "{self.vendor_product}"')]
        return []

    def model_matches(self, vendor_product: str) -> bool:
        """Same vendor and product."""
        return fnmatch.fnmatchcase(vendor_product, self.vendor_product.lower())

    def matches(self, vendor_product: str, serial: str) -> bool:
        """Same vendor, product and (when required) serial."""
        return self.model_matches(vendor_product) and (
            not self.serial or fnmatch.fnmatchcase(serial, self.serial)
        )

    def to_json(self) -> dict[str, str]:
        """As the learned file and `sentinel inventory --json` write it."""
        return {
            "name": self.name,
            "role": self.role,
            "vendor_product": self.vendor_product,
            "serial": self.serial,
            "port": self.port,
        }


@dataclass(frozen=True, slots=True)
class Present:
    """A device as a requirement is judged against it."""

    port: str
    vendor_product: str
    serial: str
    name: str = ""
    classes: frozenset[str] = frozenset()
    tty: str = ""


@dataclass(frozen=True, slots=True)
class Problem:
    """A requirement not met right now."""

    kind: Literal["required_missing", "identity_changed"]
    required: RequiredDevice
    found: Present | None = None

    @property
    def key(self) -> str:
        """Stable identity of the problem (it is reported once until it goes away)."""
        found = f"{self.found.vendor_product}:{self.found.serial}" if self.found else ""
        return f"{self.kind}|{self.required.name}|{self.required.port}|{found}"


def judge(required: Sequence[RequiredDevice], present: Iterable[Present]) -> list[Problem]:
    """The requirements that are not met by what is present."""
    devices = list(present)
    by_port = {d.port: d for d in devices}
    out: list[Problem] = []
    for req in required:
        if req.port:
            found = by_port.get(req.port)
            if found is None:
                out.append(Problem("required_missing", req))
            elif not req.matches(found.vendor_product, found.serial):
                out.append(Problem("identity_changed", req, found))
            continue
        if any(req.matches(d.vendor_product, d.serial) for d in devices):
            continue
        same_model = next((d for d in devices if req.model_matches(d.vendor_product)), None)
        out.append(Problem("identity_changed" if same_model else "required_missing", req, same_model))
    return out


def learned(state_dir: Path) -> tuple[RequiredDevice, ...]:
    """The devices `sentinel inventory accept` recorded ([] when none, or unreadable: logged)."""
    path = state_dir / LEARNED_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ()
    except (OSError, ValueError) as exc:
        log.warning("peripherals_file_unreadable", path=str(path), error=str(exc))
        return ()
    out = []
    for entry in data.get("devices", []) if isinstance(data, dict) else []:
        try:
            role = entry.get("role", "other")
            out.append(
                RequiredDevice(
                    str(entry["name"]),
                    str(entry["vendor_product"]),
                    as_role(role),
                    str(entry.get("serial", "")),
                    str(entry.get("port", "")),
                )
            )
        except (KeyError, TypeError, AttributeError):
            log.warning("peripherals_entry_unusable", path=str(path), entry=str(entry)[:200])
    return tuple(out)


def accept(
    state_dir: Path,
    present: Iterable[Present],
    *,
    actor: dict[str, Any],
    at: str,
    roles: dict[str, str],
) -> list[RequiredDevice]:
    """Record what is present now as what the terminal must have (each on its port)."""
    devices = []
    for d in sorted(present, key=lambda p: p.port):
        role = roles.get(d.port) or roles.get(d.vendor_product) or _role(d.classes)
        name = d.name or d.vendor_product
        devices.append(RequiredDevice(name, d.vendor_product, as_role(role), d.serial, d.port))
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with Directory.open(state_dir) as directory:  # root writes it for the agent's account
        directory.write_json(
            LEARNED_FILE,
            {"accepted_at": at, "accepted_by": actor, "devices": [d.to_json() for d in devices]},
            owner=directory.owner,
        )
    return devices


def _role(classes: frozenset[str]) -> str:
    return next((CLASS_ROLES[c] for c in sorted(classes) if c in CLASS_ROLES), "other")


def as_role(value: object) -> Role:
    """A known role, or "other"."""
    return cast(Role, value) if value in ROLES else "other"
