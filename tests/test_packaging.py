"""What `pip install .` puts on a machine: one import name, `crmsync`, and the sandbox CRMs
only with the `sandbox` extra (issue 13)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

import crmsync
from crmsync.sync import cli as cli_mod

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("sync", "connectors", "rules", "state", "sandbox")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_package_folder_is_installed_under_crmsync():
    declared = set(_pyproject()["tool"]["setuptools"]["packages"])
    on_disk = {"crmsync"} | {
        "crmsync." + ".".join(p.parent.relative_to(ROOT).parts)
        for folder in FOLDERS
        for p in (ROOT / folder).rglob("__init__.py")
    }
    assert declared == on_disk, "pyproject [tool.setuptools] packages must list every package folder"


def test_the_public_surface_resolves_and_nothing_else_is_promised():
    for name in crmsync.__all__:
        assert getattr(crmsync, name) is not None, name
    assert crmsync.load_config is crmsync.sync.config.load
    assert set(dir(crmsync)) >= set(crmsync.__all__)
    with pytest.raises(AttributeError, match="no attribute 'plan'"):
        crmsync.plan  # noqa: B018


def test_the_daemon_path_never_loads_the_sandbox():
    code = (
        "import sys, crmsync.sync.cli, crmsync.sync.daemon, crmsync.sync.run, crmsync.sync.report;"
        "print(sorted(m for m in sys.modules if m.startswith('crmsync.sandbox') or m in ('trustme', 'jwt')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("command", [["demo"], ["sandbox", "hubspot"]])
def test_sandbox_commands_without_the_extra_say_how_to_install_it(monkeypatch, command):
    monkeypatch.setattr(cli_mod, "SANDBOX_EXTRA", ("trustme", "crmsync_no_such_module"))
    result = CliRunner().invoke(cli_mod.cli, command)
    assert result.exit_code == 2, result.output
    assert "not installed (missing: crmsync_no_such_module)" in result.output
    assert "pip install 'crmsync[sandbox]'" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_a_wheel_installs_only_crmsync_and_its_command_works(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for item in ("pyproject.toml", "README.md", "crmsync", *FOLDERS):
        path = ROOT / item
        if path.is_dir():
            shutil.copytree(path, src / item, ignore=ignore)
        else:
            shutil.copy2(path, src / item)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(wheels), str(src)],
        check=True, capture_output=True, text=True,
    )
    (wheel,) = wheels.glob("crmsync-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"crmsync", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}
    dist_info = next(t for t in tops if t.endswith(".dist-info"))
    with zipfile.ZipFile(wheel) as z:
        assert z.read(f"{dist_info}/top_level.txt").decode().split() == ["crmsync"]
        assert "crmsync = crmsync.sync.cli:main" in z.read(f"{dist_info}/entry_points.txt").decode()
    assert "crmsync/py.typed" in names

    # A fresh environment: the wheel alone, its dependencies borrowed from this one.
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    before = set(p.name for p in site.iterdir())
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, text=True)
    added = set(p.name for p in site.iterdir()) - before
    assert added == {"crmsync", dist_info}, added
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (site / "borrowed-deps.pth").write_text("\n".join(deps) + "\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = subprocess.run([str(env_dir / "bin" / "crmsync"), "--help"], cwd=elsewhere,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "crmsync keeps CRM people data honest" in out.stdout
    where = subprocess.run([str(py), "-c", "import crmsync.sync.cli as m; print(m.__file__)"],
                           cwd=elsewhere, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site)), where
