"""Package sets, channels and locks: the pure parts, the config keys, and uv for real."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from commands.cli import main as fwbench
from loadgen.config import ConfigError, load_config
from loadgen.locks import bump_pins, channel_target, lock_file, relax, resolve_channel
from loadgen.records.packages import (
    PackageChange,
    diff_packages,
    norm_name,
    package_map,
    parse_lock,
    series_name,
    split_series,
)
from loadgen.targets import load_target

ROOT = Path(__file__).resolve().parent.parent
LOCK = """\
blinker==1.9.0
    # via flask
Flask==3.1.3
    # via -r flask/requirements.in
uvicorn[standard]==0.54.0 ; python_version >= "3.9"
-e .
--index-url https://example.org/simple
# a comment
markupsafe==3.0.4
"""


def test_a_lock_is_read_as_normalised_pins() -> None:
    assert parse_lock(LOCK) == {
        "blinker": "1.9.0",
        "flask": "3.1.3",
        "uvicorn": "0.54.0",
        "markupsafe": "3.0.4",
    }
    assert norm_name("Flask_SQLAlchemy") == norm_name("flask.sqlalchemy") == "flask-sqlalchemy"
    pairs = package_map([("Jinja2", "3.1.6"), {"name": "Werkzeug", "version": "3.1.9"}])
    assert pairs == {"jinja2": "3.1.6", "werkzeug": "3.1.9"}


def test_a_diff_names_changed_added_and_removed_packages_by_name() -> None:
    before = {"flask": "3.1.3", "werkzeug": "3.1.3", "six": "1.17.0", "click": "8.5.1"}
    after = {"Flask": "3.1.3", "Werkzeug": "3.1.9", "blinker": "1.9.0", "click": "8.5.1"}
    changes = diff_packages(before, after)
    assert changes == (
        PackageChange("blinker", "", "1.9.0"),
        PackageChange("six", "1.17.0", ""),
        PackageChange("werkzeug", "3.1.3", "3.1.9"),
    )
    assert [c.kind for c in changes] == ["added", "removed", "changed"]
    assert [c.text() for c in changes] == [
        "blinker (new) 1.9.0",
        "six 1.17.0 (removed)",
        "werkzeug 3.1.3 → 3.1.9",
    ]
    assert PackageChange.from_dict(changes[2].to_dict()) == changes[2]
    assert diff_packages(before, before) == ()


def test_series_names_carry_the_channel() -> None:
    assert series_name("flask", "pinned") == "flask"
    assert series_name("flask", "latest") == "flask@latest"
    assert split_series("flask@latest") == ("flask", "latest")
    assert split_series("flask-granian") == ("flask-granian", "pinned")


def test_relax_keeps_lower_bounds_and_makes_paths_absolute(tmp_path: Path) -> None:
    text = "flask==3.1.3\nuvicorn[standard]==0.54.0 ; python_version >= '3.9'\n"
    text += "gunicorn>=22,<28\n# pinned==1.0 stays a comment\n-e .\n-r ../base.in\n"
    got = relax(text, tmp_path / "t")
    assert got.splitlines() == [
        "flask>=3.1.3",
        "uvicorn[standard]>=0.54.0 ; python_version >= '3.9'",
        "gunicorn>=22,<28",
        "# pinned==1.0 stays a comment",
        f"-e {tmp_path / 't'}",
        f"-r {tmp_path / 'base.in'}",
    ]


def test_bump_pins_sets_each_pin_to_the_resolved_version() -> None:
    text = "flask==3.1.3\nuvicorn[standard]==0.54.0\ngunicorn>=22\n"
    got = bump_pins(text, {"flask": "3.2.0", "uvicorn": "0.55.0", "gunicorn": "27.0.1"})
    assert got == "flask==3.2.0\nuvicorn[standard]==0.55.0\ngunicorn>=22\n"


def test_a_channel_target_is_its_own_series_built_from_its_lock(tmp_path: Path) -> None:
    t = load_target(ROOT / "targets" / "flask")
    lock = lock_file(tmp_path, "flask@latest")
    ct = channel_target(t, "latest", lock)
    assert (ct.name, ct.channel, ct.requirements, ct.folder_name) == (
        "flask@latest",
        "latest",
        lock,
        "flask",
    )
    assert t.requirements == t.dir / "requirements.txt" and t.channel == "pinned"
    assert ct.to_dict()["channel"] == "latest"


def _toml(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "bench.toml"
    p.write_text(body)
    return p


@pytest.mark.parametrize(
    ("body", "key", "words"),
    [
        ('[run]\nchannels = ["nightly"]\n', "run.channels[0]", "is not one of"),
        ("[run]\nchannels = []\n", "run.channels", "is empty"),
        ('[nightly]\nchannels = ["latest", "latest"]\n', "nightly.channels", "twice"),
        ('[envs]\nindex_url = "pypi.org"\n', "envs.index_url", "not an http(s)://"),
        ('[envs]\nfind_links = ["no-such-folder"]\n', "envs.find_links[0]", "not a folder"),
        ("[envs]\nno_index = true\n", "envs.no_index", "needs envs.find_links"),
        ("[check]\nbisect_trials = 1\n", "check.bisect_trials", "at least 2"),
        ("[check]\nbisect_budget = 0\n", "check.bisect_budget", "must be"),
    ],
)
def test_bad_channel_and_source_keys_are_named(
    tmp_path: Path, body: str, key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_toml(tmp_path, body))
    assert err.value.key == key and words in err.value.reason


def test_find_links_are_taken_from_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    cfg = load_config(_toml(tmp_path, '[envs]\nfind_links = ["wheels"]\nno_index = true\n'))
    assert cfg.find_links() == (tmp_path / "wheels",)
    from loadgen.envs import index_args

    assert index_args(cfg) == ["--find-links", str(tmp_path / "wheels"), "--no-index"]


# --- uv for real (PyPI, or the mirror this machine is given) --------------------------------


def _copy_target(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / "targets" / name
    shutil.copytree(ROOT / "targets" / name, dest)
    (tmp_path / "bench.toml").write_text('[paths]\ntargets_dir = "targets"\n')
    return dest


@pytest.mark.e2e
def test_lock_check_finds_a_stale_lock_and_lock_mends_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = _copy_target(tmp_path, "flask")
    cfg = str(tmp_path / "bench.toml")
    assert fwbench(["--config", cfg, "lock", "--check", "flask"]) == 0
    assert "flask: up to date" in capsys.readouterr().out
    # requirements.in moved on (a user bumped a pin by hand): the lock is now stale.
    src = (d / "requirements.in").read_text()
    (d / "requirements.in").write_text(re.sub(r"(?m)^flask==\S+", "flask==3.1.2", src))
    before = (d / "requirements.txt").read_text()
    assert fwbench(["--config", cfg, "lock", "--check", "flask"]) == 1
    out = capsys.readouterr().out
    assert "flask" in out and "3.1.3" in out and "3.1.2" in out and "stale" in out
    assert (d / "requirements.txt").read_text() == before  # --check writes nothing
    assert fwbench(["--config", cfg, "lock", "flask"]) == 0
    assert parse_lock((d / "requirements.txt").read_text())["flask"] == "3.1.2"
    assert fwbench(["--config", cfg, "lock", "--check", "flask"]) == 0


@pytest.mark.e2e
def test_the_latest_channel_resolves_newest_releases_never_older_than_the_pins(
    tmp_path: Path,
) -> None:
    d = _copy_target(tmp_path, "flask")
    # An old pin: the latest channel must move it (and what it needs) forward.
    src = (d / "requirements.in").read_text()
    (d / "requirements.in").write_text(re.sub(r"(?m)^flask==\S+", "flask==3.0.0", src))
    cfg = load_config(tmp_path / "bench.toml")
    t = load_target(d)
    lock = resolve_channel(t, "latest", tmp_path / "run" / "locks", cfg)
    pins = parse_lock(lock.read_text())
    pinned = parse_lock((d / "requirements.txt").read_text())
    assert lock == tmp_path / "run" / "locks" / "flask@latest.txt"
    assert _version(pins["flask"]) >= _version(pinned["flask"]) > _version("3.0.0")
    assert set(pinned) <= set(pins)
    assert (tmp_path / "run" / "locks" / "flask@latest.in").read_text().startswith("flask>=3.0.0\n")


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split(".")[:3])
