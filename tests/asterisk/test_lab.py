"""Lab bookkeeping that must never touch the wrong process."""

from __future__ import annotations

import os
from pathlib import Path

from hotline.asterisk import lab
from hotline.settings import load_settings


def test_a_stale_pidfile_naming_another_process_is_not_a_running_node(tmp_path: Path) -> None:
    settings = load_settings(environ={}, overrides={"data_dir": tmp_path, "asterisk_root": tmp_path / "root"})
    node = lab.lab_node(settings, lab.node_specs(settings, 1)[0])
    node.host_dir.mkdir(parents=True)
    node.pidfile.write_text(str(os.getpid()))  # after a reboot the number belongs to something else
    assert node.pid() is None
    assert lab.stop_node(node) is False  # and stopping it sends no signal to that process
    node.pidfile.write_text("not a pid")
    assert node.pid() is None


def test_node_configuration_is_private(tmp_path: Path) -> None:
    settings = load_settings(environ={}, overrides={"data_dir": tmp_path, "asterisk_root": tmp_path / "root"})
    node = lab.lab_node(settings, lab.node_specs(settings, 1)[0])
    lab.write_node_config(settings, node)
    manager = node.host_dir / "etc" / "manager.conf"
    assert settings.ami_secret in manager.read_text()
    assert manager.stat().st_mode & 0o077 == 0 and (node.host_dir / "etc").stat().st_mode & 0o077 == 0
