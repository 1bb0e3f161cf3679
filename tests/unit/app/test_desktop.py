"""install-desktop / uninstall-desktop: a valid launcher for ZIM and EPUB, icons, clean removal."""

from __future__ import annotations

import argparse
import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

from app import desktop


@pytest.fixture
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty XDG data home, and system data dirs that know no ZIM type."""
    home = tmp_path / "share"
    home.mkdir()
    system = tmp_path / "system-share"
    system.mkdir()
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    monkeypatch.setenv("XDG_DATA_DIRS", str(system))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return home


@pytest.fixture
def command(tmp_path: Path) -> Path:
    """A stand-in `librarian` script in a folder whose name needs quoting."""
    script = tmp_path / "my venv" / "bin" / "librarian"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    return script


def _entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_install_writes_a_launcher_for_zim_and_epub(data_home: Path, command: Path) -> None:
    report = desktop.install(command=command, refresh=False)

    entry_path = data_home / "applications" / "librarian.desktop"
    assert entry_path in report.files
    entry = _entry(entry_path)
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Librarian"
    assert entry["Exec"] == f'"{command}" gui %F'
    assert entry["TryExec"] == str(command)
    assert entry["Icon"] == "librarian"
    assert entry["Terminal"] == "false"
    assert set(entry["MimeType"].strip(";").split(";")) == {
        "application/x-zim",
        "application/epub+zip",
    }
    assert {"Office", "Education"} <= set(entry["Categories"].strip(";").split(";"))


def test_install_puts_the_icon_in_every_size(data_home: Path, command: Path) -> None:
    desktop.install(command=command, refresh=False)

    hicolor = data_home / "icons" / "hicolor"
    svg = hicolor / "scalable" / "apps" / "librarian.svg"
    assert svg.read_bytes() == (desktop.assets_dir() / "librarian.svg").read_bytes()
    for size in (16, 32, 48, 64, 128, 256):
        png = hicolor / f"{size}x{size}" / "apps" / "librarian.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        # The PNG's header says its width: the right picture went into the right folder.
        assert int.from_bytes(png.read_bytes()[16:20], "big") == size


def test_zim_mime_type_is_added_only_when_the_system_lacks_it(
    data_home: Path, command: Path, tmp_path: Path
) -> None:
    desktop.install(command=command, refresh=False)
    package = data_home / "mime" / "packages" / desktop.MIME_PACKAGE
    assert 'type="application/x-zim"' in package.read_text()
    assert 'pattern="*.zim"' in package.read_text()

    desktop.uninstall(refresh=False)
    system_packages = tmp_path / "system-share" / "mime" / "packages"
    system_packages.mkdir(parents=True)
    (system_packages / "kiwix.xml").write_text('<mime-type type="application/x-zim"/>')
    report = desktop.install(command=command, refresh=False)
    assert not package.exists()
    assert package not in report.files


def test_uninstall_removes_exactly_what_install_wrote(data_home: Path, command: Path) -> None:
    other_icon = data_home / "icons" / "hicolor" / "48x48" / "apps" / "other.png"
    other_icon.parent.mkdir(parents=True)
    other_icon.write_bytes(b"x")
    other_entry = data_home / "applications" / "other.desktop"
    other_entry.parent.mkdir(parents=True)
    other_entry.write_text("[Desktop Entry]\nName=Other\n")
    before = _files(data_home)

    installed = desktop.install(command=command, refresh=False).files
    assert set(installed) == _files(data_home) - before
    removed = desktop.uninstall(refresh=False).files

    assert set(removed) == set(installed)
    assert _files(data_home) == before
    assert not (data_home / "icons" / "hicolor" / "scalable").exists()  # emptied folders go too
    assert desktop.uninstall(refresh=False).files == []  # a second uninstall finds nothing


def test_uninstall_leaves_a_launcher_it_did_not_write(data_home: Path) -> None:
    foreign = data_home / "applications" / "librarian.desktop"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("[Desktop Entry]\nName=Some other librarian\n")
    report = desktop.uninstall(refresh=False)
    assert foreign.exists()
    assert any("not written by Librarian" in note for note in report.notes)


def test_exec_arguments_are_quoted_as_the_spec_says() -> None:
    assert desktop.quote_exec_argument("/usr/bin/librarian") == "/usr/bin/librarian"
    assert desktop.quote_exec_argument("/a b/librarian") == '"/a b/librarian"'
    # `$` is escaped for the Exec rules, then the backslash again for the string value.
    assert desktop.quote_exec_argument("/a$b/librarian") == '"/a\\\\$b/librarian"'


@pytest.mark.skipif(
    shutil.which("desktop-file-validate") is None, reason="desktop-file-utils absent"
)
def test_the_launcher_passes_desktop_file_validate(data_home: Path, command: Path) -> None:
    desktop.install(command=command, refresh=False)
    entry = data_home / "applications" / "librarian.desktop"
    result = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout.lower()


@pytest.mark.skipif(
    shutil.which("update-desktop-database") is None, reason="desktop-file-utils absent"
)
def test_refresh_registers_librarian_as_a_handler_of_zim_files(
    data_home: Path, command: Path
) -> None:
    report = desktop.install(command=command, refresh=True)
    assert "update-desktop-database" in report.refreshed
    cache = (data_home / "applications" / "mimeinfo.cache").read_text()
    assert "application/x-zim=librarian.desktop;" in cache
    assert "application/epub+zip=librarian.desktop;" in cache


def test_cli_installs_and_uninstalls(data_home: Path, command: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    parser = argparse.ArgumentParser()
    desktop.register(parser.add_subparsers(dest="command"))

    args = parser.parse_args(["install-desktop", "--no-refresh", "--exec", str(command)])
    assert args.func(args) == 0
    assert (data_home / "applications" / "librarian.desktop").is_file()
    assert "librarian.desktop" in capsys.readouterr().out

    args = parser.parse_args(["uninstall-desktop", "--no-refresh"])
    assert args.func(args) == 0
    assert not (data_home / "applications" / "librarian.desktop").exists()


def test_default_command_is_the_librarian_script_beside_python(
    monkeypatch: pytest.MonkeyPatch, command: Path
) -> None:
    monkeypatch.setattr(desktop.sys, "executable", str(command.parent / "python"))
    assert desktop.launcher_command() == command


def test_inside_an_appimage_the_launcher_starts_the_appimage(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(desktop.sys, "frozen", True, raising=False)
    monkeypatch.setattr(desktop.sys, "executable", "/tmp/.mount_Libr123/usr/lib/Librarian")
    monkeypatch.setenv("APPIMAGE", str(tmp_path / "Librarian-x86_64.AppImage"))
    assert desktop.launcher_command() == tmp_path / "Librarian-x86_64.AppImage"
