"""Files that hold secrets or personal data stay private (issue 10, section 4).

- A secret file named in sync.toml (`*_file`, the JWT private key) that its group or
  others can read gets one WARNING naming the setting, the file and the fix.
- The README's backup recipe makes a copy of the mirror only its owner can read.
(The HTML report's mode is checked in test_hostile_data.py.)
"""

from __future__ import annotations

import re
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from crmsync.state.db import open_db

from .conftest import Env

ROOT = Path(__file__).resolve().parents[2]


def _sync(env: Env) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crmsync.sync.cli", "sync", "--pull-only", "--config", str(env.config)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=env.dir,
    )


def test_secret_files_others_can_read_get_one_warning_each_with_the_fix(env: Env) -> None:
    key = env.dir / "salesforce-jwt-key.pem"  # [salesforce] private_key_file
    token = env.dir / "hubspot-token.txt"  # [hubspot] token_file
    key.chmod(0o644)
    token.chmod(0o640)
    run = _sync(env)
    assert run.returncode == 0, run.stderr[-3000:]
    warnings = [line for line in run.stderr.splitlines() if "WARNING" in line and "chmod 600" in line]
    assert len(warnings) == 2, "\n".join(warnings)
    (sf_line,) = [w for w in warnings if "[salesforce] private_key_file" in w]
    (hs_line,) = [w for w in warnings if "[hubspot] token_file" in w]
    assert str(key) in sf_line and f"chmod 600 {key}" in sf_line and "0644" in sf_line
    assert str(token) in hs_line and f"chmod 600 {token}" in hs_line and "0640" in hs_line
    # the CA bundle (ca_file) is public; the other secret files are 0600: no warning

    key.chmod(0o600)
    token.chmod(0o600)
    quiet = _sync(env)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert "chmod 600" not in quiet.stderr


def test_readme_backup_recipe_makes_a_copy_only_its_owner_can_read(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    line = next(line for line in readme.splitlines() if "Back up the mirror" in line)
    recipe = re.search(r"`([^`]*\.backup[^`]*)`", line)
    assert recipe is not None, line
    db = open_db(tmp_path / "crmsync.db")
    db["accounts_demo"].insert({"id": 1, "name": "Ada Lovelace"})
    db.close()
    # a typical interactive shell: files are created 0644 unless the recipe says otherwise
    subprocess.run(
        ["bash", "-c", f"umask 022 && {recipe.group(1)}"], cwd=tmp_path, check=True, timeout=60
    )
    copy = tmp_path / "crmsync-backup.db"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT name FROM accounts_demo").fetchall() == [("Ada Lovelace",)]
