"""What the app says before Qt aborts for want of X11 libraries."""

from __future__ import annotations

from app.ui.application import X11_LIBRARIES, missing_x11_packages


def _finder(absent: set[str]):
    return lambda name: None if name in absent else f"lib{name}.so.0"


def test_names_the_packages_of_the_missing_libraries() -> None:
    env = {"DISPLAY": ":0"}
    missing = missing_x11_packages(env, _finder({"xcb-cursor", "EGL"}), "linux")
    assert missing == ["libxcb-cursor0", "libegl1"]


def test_nothing_when_all_are_there_or_x11_is_not_used() -> None:
    everything = _finder(set(X11_LIBRARIES))
    assert missing_x11_packages({"DISPLAY": ":0"}, _finder(set()), "linux") == []
    # no display, another platform plugin, a Wayland session, or not Linux: Qt needs no xcb
    assert missing_x11_packages({}, everything, "linux") == []
    env = {"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}
    assert missing_x11_packages(env, everything, "linux") == []
    env = {"DISPLAY": ":0", "XDG_SESSION_TYPE": "wayland"}
    assert missing_x11_packages(env, everything, "linux") == []
    assert missing_x11_packages({"DISPLAY": ":0"}, everything, "darwin") == []
    # asked for xcb explicitly in a Wayland session: xcb it is
    env = {"DISPLAY": ":0", "XDG_SESSION_TYPE": "wayland", "QT_QPA_PLATFORM": "xcb"}
    assert missing_x11_packages(env, everything, "linux") == list(X11_LIBRARIES.values())
