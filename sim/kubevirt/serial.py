"""A simulated guest's first serial port, as KubeVirt's `console` subresource pipes it (raw bytes; kubevirt.md §2.3):
a getty login prompt and a small shell. Users and passwords come from the VM's cloud-init `users:` (what vmoperator
writes from `cloudInitUser`, wukong.md §5.3); a crypt hash is checked as the guest would. Sans-IO: `feed` takes the
client's bytes and returns the guest's output, with the tty's echo."""

from __future__ import annotations

import hmac
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import yaml

with warnings.catch_warnings():  # deprecated in 3.11, still the way to check a SHA-512 crypt hash here
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

BANNER = "Ubuntu 22.04.3 LTS {host} ttyS0\r\n\r\n"
MOTD = (
    "Welcome to Ubuntu 22.04.3 LTS (GNU/Linux 5.15.0-91-generic x86_64)\r\n\r\n"
    "(NovaSphere simulator: no guest runs here.)\r\n"
)


def users_from_cloud_init(user_data: str) -> dict[str, str]:
    """`{name: passwd}` from a #cloud-config (passwd may be a crypt hash or, as vmoperator passes it, plain)."""
    try:
        config = yaml.safe_load(user_data) or {}
    except yaml.YAMLError:
        return {}
    users = config.get("users") if isinstance(config, Mapping) else None
    return {
        str(user["name"]): str(user.get("passwd", ""))
        for user in users or []
        if isinstance(user, Mapping) and user.get("name") and not user.get("lock_passwd")
    }


def password_matches(given: str, stored: str) -> bool:
    if not stored:
        return False
    if stored.startswith("$"):
        return hmac.compare_digest(crypt.crypt(given, stored), stored)
    return hmac.compare_digest(given, stored)


@dataclass
class SerialGuest:
    """The getty and shell of one VMI; the session survives reconnects, like a real serial tty."""

    hostname: str
    users: dict[str, str]
    describe: Callable[[], dict[str, str]]  # facts the shell shows (ip, node, …)
    booted: float = field(default_factory=time.time)
    _stage: str = "idle"  # idle → login → password → shell
    _line: str = ""
    _user: str = ""
    _login_time: float = 0.0

    def logged_in(self) -> tuple[str, float] | None:
        """(user, login time) while a shell is open, for the guest agent's user list."""
        return (self._user, self._login_time) if self._stage == "shell" else None

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for char in data.decode("utf-8", "replace"):
            out += self._char(char)
        return bytes(out)

    def _char(self, char: str) -> bytes:
        if char in "\r\n":
            line, self._line = self._line, ""
            return b"\r\n" + self._enter(line).encode()
        if char in "\x7f\x08":
            if self._line:
                self._line = self._line[:-1]
                return b"" if self._stage == "password" else b"\b \b"
            return b""
        if char == "\x03":  # Ctrl-C
            self._line = ""
            return b"^C\r\n" + self._prompt().encode()
        if char == "\x04" and not self._line and self._stage == "shell":  # Ctrl-D
            return self._enter("logout").encode()
        if not char.isprintable():
            return b""
        self._line += char
        return b"" if self._stage == "password" else char.encode()

    def _prompt(self) -> str:
        if self._stage == "shell":
            return f"{self._user}@{self.hostname}:~$ "
        if self._stage == "password":
            return "Password: "
        return f"{self.hostname} login: "

    def _enter(self, line: str) -> str:
        if self._stage == "idle":
            self._stage = "login"
            return "\r\n" + BANNER.format(host=self.hostname) + self._prompt()
        if self._stage == "login":
            if not line.strip():
                return self._prompt()
            self._user, self._stage = line.strip(), "password"
            return self._prompt()
        if self._stage == "password":
            if password_matches(line, self.users.get(self._user, "")):
                self._stage, self._login_time = "shell", time.time()
                return MOTD + self._prompt()
            self._stage = "login"
            return "\r\nLogin incorrect\r\n" + self._prompt()
        return self._run(line.strip())

    def _run(self, command: str) -> str:
        if command in ("exit", "logout"):
            self._stage, self._user = "login", ""
            return "\r\n" + BANNER.format(host=self.hostname) + self._prompt()
        output = self._output(command)
        return (output + "\r\n" if output else "") + self._prompt()

    def _output(self, command: str) -> str:
        name, _, rest = command.partition(" ")
        facts = self.describe()
        if not name:
            return ""
        if name == "echo":
            return rest
        if name == "hostname":
            return self.hostname
        if name == "whoami":
            return self._user
        if name == "uname":
            return (
                f"Linux {self.hostname} 5.15.0-91-generic #101-Ubuntu SMP x86_64 GNU/Linux" if "-a" in rest else "Linux"
            )
        if name == "uptime":
            return f"up {int(time.time() - self.booted)} seconds"
        if name == "ip":
            return (
                f"2: enp1s0: <BROADCAST,MULTICAST,UP,LOWER_UP>\r\n    inet {facts.get('ip', '')}/32 scope global enp1s0"
            )
        if name == "cat" and rest == "/etc/os-release":
            return 'PRETTY_NAME="Ubuntu 22.04.3 LTS"\r\nNAME="Ubuntu"\r\nVERSION_ID="22.04"\r\nID=ubuntu'
        if name == "sim-info":
            return "\r\n".join(f"{key}: {value}" for key, value in facts.items())
        return f"-bash: {name}: command not found"
