"""What the report's scripts may be: the explorer's data block and its one script, allowed by hash."""

from __future__ import annotations

import base64
import hashlib
import re

from harness.reports.audit import CSP
from harness.reports.explorer import DATA_ID

_SCRIPT = re.compile(r"<script([^>]*)>(.*?)</script>", re.S)


def assert_only_explorer_scripts(document: str) -> None:
    """At most one JSON data block and one executable script, whose sha256 is the CSP's only
    script source (no 'unsafe-inline', no other source)."""
    found = _SCRIPT.findall(document)
    executable = [body for attrs, body in found if "application/json" not in attrs]
    data = [attrs for attrs, _ in found if "application/json" in attrs]
    assert len(executable) <= 1 and len(data) <= 1, found
    assert all(f'id="{DATA_ID}"' in attrs for attrs in data)
    script_src = re.search(r"script-src ([^;]*);", CSP)
    assert script_src is not None and "unsafe" not in script_src.group(1)
    for body in executable:
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
        assert script_src.group(1).strip() == f"'sha256-{digest}'"
