"""The systemd units and `daemon install-service`, checked by systemd's own linter.

systemd cannot run units on the build machine (it is not PID 1), but `systemd-analyze
verify` loads them exactly as the user manager would, so every rendered unit goes through
it; warnings count as failures, since verify reports them with rc 0.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from prodigyctl.commands import service
from prodigyctl.exitcodes import EXIT_CONFLICT, EXIT_OK
from prodigyd import errorcodes
from tests.cli import ctl

REPO_UNITS = Path(__file__).resolve().parents[2] / "systemd"
UNITS = (service.SERVICE_UNIT, service.SOCKET_UNIT)


@pytest.fixture
def unit_folder(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's own ~/.config/systemd/user (HOME is the test's; XDG_CONFIG_HOME unset)."""
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return Path.home() / ".config" / "systemd" / "user"


def _verify(folder: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)  # --user verify needs a runtime dir to set up its manager
    return subprocess.run(
        [analyze, "--user", "verify", "--man=no", *(str(folder / name) for name in UNITS)],
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _render_into(folder: Path, argv: Sequence[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in UNITS:
        (folder / name).write_text(service.render(name, argv))


def _install(*, uninstall: bool = False, as_json: bool = False) -> int:
    """Its exit code: returned, or (a refusal, errors.fail) raised."""
    try:
        return service.install_service(uninstall=uninstall, as_json=as_json)
    except SystemExit as stop:
        return int(stop.code or 0)


def test_the_installer_reads_the_units_in_systemd() -> None:
    assert service.UNITS_DIR.resolve() == REPO_UNITS  # the prodigyctl/systemd link
    assert tuple(sorted(path.name for path in REPO_UNITS.iterdir())) == service.UNITS
    assert "systemd/prodigyd.service" in (REPO_UNITS.parent / "pyproject.toml").read_text()


def test_rendered_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    argv = service.daemon_argv()
    assert Path(argv[0]).is_absolute()
    _render_into(tmp_path / "units", argv)
    done = _verify(tmp_path / "units", tmp_path)
    assert (done.returncode, done.stderr) == (0, "")


def test_an_exec_path_with_spaces_and_specifier_characters_passes_verify(tmp_path: Path) -> None:
    odd = tmp_path / "odd dir %d $HOME" / "python"
    odd.parent.mkdir()
    odd.symlink_to(sys.executable)
    _render_into(tmp_path / "units", [str(odd), "-m", "prodigyd.main"])
    done = _verify(tmp_path / "units", tmp_path)
    assert (done.returncode, done.stderr) == (0, "")


def test_verify_fails_a_unit_whose_daemon_does_not_exist(tmp_path: Path) -> None:
    # Guards the two tests above: the linter really checks ExecStart.
    _render_into(tmp_path / "units", [str(tmp_path / "missing" / "prodigyd")])
    done = _verify(tmp_path / "units", tmp_path)
    assert done.returncode != 0
    assert "is not executable" in done.stderr


def test_install_service_writes_both_units_and_prints_the_enable_line(
    unit_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _install() == EXIT_OK
    out = capsys.readouterr().out
    argv = service.daemon_argv()
    exec_start = service.exec_command(argv)
    for name in UNITS:
        text = (unit_folder / name).read_text()
        shipped = (REPO_UNITS / name).read_text().replace("=@PRODIGYD@", f"={exec_start}")
        shipped = shipped.replace("=@TIMEOUT_STOP@", "=90s")  # the default 30 s grace + 60
        assert text == f"{service.MARKER}\n{shipped}"
        assert f"wrote {unit_folder / name}" in out
    service_text = (unit_folder / service.SERVICE_UNIT).read_text()
    assert f"\nExecStart={exec_start}\n" in service_text
    assert "@PRODIGYD@" not in service_text
    assert service.ENABLE_LINE == (
        "systemctl --user daemon-reload && systemctl --user enable --now prodigyd.socket"
    )
    assert f"  {service.ENABLE_LINE}\n" in out


def test_the_service_waits_out_the_configured_grace_before_its_kill(
    unit_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRODIGY_SHUTDOWN_GRACE_SECONDS", "300")
    assert _install() == EXIT_OK
    assert "\nTimeoutStopSec=360s\n" in (unit_folder / service.SERVICE_UNIT).read_text()


def test_install_service_is_idempotent(
    unit_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _install() == EXIT_OK
    first = {name: (unit_folder / name).read_text() for name in UNITS}
    capsys.readouterr()
    assert _install() == EXIT_OK
    out = capsys.readouterr().out
    assert {name: (unit_folder / name).read_text() for name in UNITS} == first
    for name in UNITS:
        assert f"unchanged {unit_folder / name}" in out


def test_installed_units_pass_systemd_analyze_verify(unit_folder: Path, tmp_path: Path) -> None:
    assert _install() == EXIT_OK
    done = _verify(unit_folder, tmp_path)
    assert (done.returncode, done.stderr) == (0, "")


def test_install_service_follows_xdg_config_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert _install() == EXIT_OK
    for name in UNITS:
        assert (tmp_path / "config" / "systemd" / "user" / name).is_file()
    assert not (Path.home() / ".config").exists()


def test_install_service_ignores_a_relative_xdg_config_home(
    unit_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The XDG spec says a relative value is invalid, and systemd ignores it too.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", "config")
    assert _install() == EXIT_OK
    for name in UNITS:
        assert (unit_folder / name).is_file()
    assert not (tmp_path / "config").exists()


def test_install_service_refuses_to_overwrite_a_unit_it_did_not_write(
    unit_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unit_folder.mkdir(parents=True)
    mine = "[Service]\nExecStart=/usr/local/bin/my-prodigyd\n"
    (unit_folder / service.SERVICE_UNIT).write_text(mine)
    assert _install() == EXIT_CONFLICT
    err = capsys.readouterr().err
    assert f"{unit_folder / service.SERVICE_UNIT} was not written by prodigyctl" in err
    assert (unit_folder / service.SERVICE_UNIT).read_text() == mine
    assert not (unit_folder / service.SOCKET_UNIT).exists()  # nothing half-installed


def test_install_service_refusal_is_a_json_error_under_json(unit_folder: Path) -> None:
    unit_folder.mkdir(parents=True)
    (unit_folder / service.SERVICE_UNIT).write_text("[Service]\nExecStart=/bin/true\n")
    done = ctl("daemon", "install-service", "--json")
    assert done.returncode == EXIT_CONFLICT
    error = json.loads(done.stderr)["error"]
    assert error["code"] == errorcodes.CONFLICT
    assert "was not written by prodigyctl" in error["message"]


def test_uninstall_removes_the_units_and_their_enablement_links(
    unit_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _install() == EXIT_OK
    # What `systemctl --user enable --now prodigyd.socket` leaves behind, plus a stranger.
    wants = unit_folder / "sockets.target.wants"
    wants.mkdir()
    (wants / service.SOCKET_UNIT).symlink_to(unit_folder / service.SOCKET_UNIT)
    (unit_folder / "other.socket").write_text("[Socket]\nListenStream=%t/other.sock\n")
    (wants / "other.socket").symlink_to(unit_folder / "other.socket")
    capsys.readouterr()
    assert _install(uninstall=True) == EXIT_OK
    out = capsys.readouterr().out
    for path in (unit_folder / service.SERVICE_UNIT, unit_folder / service.SOCKET_UNIT):
        assert not path.exists()
        assert f"removed {path}" in out
    assert not (wants / service.SOCKET_UNIT).is_symlink()
    assert (wants / "other.socket").is_symlink()
    assert f"  {service.DISABLE_LINE}\n" in out


def test_uninstall_refuses_to_remove_a_unit_it_did_not_write(
    unit_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _install() == EXIT_OK
    foreign = unit_folder / service.SOCKET_UNIT
    foreign.unlink()
    foreign.write_text("[Socket]\nListenStream=/run/elsewhere.sock\n")
    assert _install(uninstall=True) == EXIT_CONFLICT
    assert "was not written by prodigyctl" in capsys.readouterr().err
    assert foreign.exists()
    assert (unit_folder / service.SERVICE_UNIT).exists()


def test_uninstall_with_nothing_installed_succeeds(
    unit_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _install(uninstall=True) == EXIT_OK
    assert f"no prodigyd units installed in {unit_folder}" in capsys.readouterr().out


def test_json_reports_the_files_the_command_and_the_next_step(
    unit_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _install(as_json=True) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["installed"] == [
        {"path": str(unit_folder / name), "changed": True} for name in UNITS
    ]
    assert report["exec_start"] == service.exec_command(service.daemon_argv())
    assert report["next"] == service.ENABLE_LINE
    assert _install(uninstall=True, as_json=True) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report == {
        "removed": [str(unit_folder / name) for name in UNITS],
        "next": service.DISABLE_LINE,
    }


def test_install_warns_when_this_client_would_not_use_the_socket_unit(
    unit_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The suite sets PRODIGY_HOME, so prodigyctl here uses $PRODIGY_HOME/prodigyd.sock.
    assert _install() == EXIT_OK
    err = capsys.readouterr().err
    assert "warning: prodigyctl here uses the socket" in err
    assert "unset PRODIGY_HOME" in err
    # the units set no PRODIGY_HOME: the store differs too, and the warning says so
    assert "its store is the default one, not PRODIGY_HOME's" in " ".join(err.split())


def test_install_does_not_warn_in_a_systemd_login_environment(
    unit_folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("PRODIGY_HOME")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "runtime"))
    assert _install(as_json=True) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["warnings"] == []
