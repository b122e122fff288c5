"""The web console's i18n check (web/tools/check-i18n.mjs): the console's own sources pass it, and it catches what it is
for (a message missing in a language, a key the code uses that no file has, a visible string written in the code)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "web"
CHECK = WEB / "tools" / "check-i18n.mjs"


def check(root: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(CHECK), *([str(root)] if root else [])], capture_output=True, text=True, timeout=60, check=False
    )


def test_every_visible_string_of_the_console_comes_from_complete_message_files() -> None:
    result = check()
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_check_reports_a_missing_message_a_missing_key_and_a_literal_string(tmp_path: Path) -> None:
    messages = tmp_path / "src" / "i18n"
    for language, part in (
        ("en-US", {"title": "Machines", "count_one": "{{count}} machine", "count_other": "{{count}} machines"}),
        ("zh-CN", {"count_other": "{{count}} 台"}),  # no title; Chinese has one plural form, which is enough
    ):
        (messages / language).mkdir(parents=True)
        (messages / language / "vms.json").write_text(json.dumps(part), encoding="utf-8")
    (tmp_path / "src" / "Page.tsx").write_text(
        "export function Page() {\n"
        '  return <h1 title={t("vms.title")}>{t("vms.subtitle")}{t("vms.count", { count: 2 })}</h1>;\n'
        "}\n"
        "export function Other() {\n"
        "  return <p>Hello</p>;\n"
        "}\n",
        encoding="utf-8",
    )
    result = check(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "src/i18n/zh-CN: vms.title is missing (en-US has it)",
        "src/Page.tsx:2: no message vms.subtitle",
        'src/Page.tsx:5: text in JSX: "Hello"',
        "3 i18n finding(s)",
    ]
