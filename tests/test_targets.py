"""Target metadata: every real target loads; malformed folders are named and skipped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from commands.cli import main as fwbench
from commands.common import discover_targets
from loadgen.checks import MESSAGE
from loadgen.config import ConfigError, load_config
from loadgen.targets import SEED_ORDER, discover

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "targets"

# Every framework the brief asks for, and the extra (framework, server) pairs.
REQUIRED = set(SEED_ORDER) | {
    "fastapi",
    "starlette",
    "litestar",
    "quart",
    "bottle",
    "blacksheep",
    "emmett",
    "robyn",
    "flask-granian",
    "starlette-granian",
    # the deployment matrix: one framework on the servers users pick
    "flask-waitress",
    "flask-uwsgi",
    "django-granian",
    "django-waitress",
    "django-uwsgi",
    "django-uvicorn",
    "fastapi-granian",
    "fastapi-hypercorn",
    "starlette-hypercorn",
    "starlette-gunicorn",
    # the frameworks 2026 users expect
    "django-ninja",
    "drf",
    "falcon-asgi",
    "fasthtml",
    "microdot",
    "panther",
    "muffin",
    "baize",
    "lihil",
    "ravyn",
    "nexios",
    "hypern",
}


def test_every_required_target_is_there_and_valid() -> None:
    found = discover(ROOT / "targets")
    assert not found.skipped, found.skipped
    assert found.names() >= REQUIRED


def test_seed_frameworks_come_first() -> None:
    names = [t.name for t in discover(ROOT / "targets").targets]
    assert names[: len(SEED_ORDER)] == list(SEED_ORDER)


def test_requirements_fully_pinned_and_templates_dynamic() -> None:
    for t in discover(ROOT / "targets").targets:
        lines = [ln.split("#")[0].strip() for ln in t.requirements.read_text().splitlines()]
        pins = [ln for ln in lines if ln and not ln.startswith("-")]
        assert pins, f"{t.name}: empty lock"
        assert all("==" in p or " @ " in p for p in pins), t.name
        if t.kind == "html":
            assert MESSAGE not in (t.dir / t.template).read_text(), t.name


def test_gunicorn_targets_keep_alive_and_no_control_socket() -> None:
    """gunicorn's sync worker has no keep-alive: a WSGI target runs the gthread worker, an ASGI
    one gunicorn's own asgi worker (gunicorn 24+); neither opens gunicorn's control socket."""
    for t in discover(ROOT / "targets").targets:
        cmd = " ".join(t.command)
        if "gunicorn" in cmd:
            assert "-k gthread" in cmd or "-k asgi" in cmd, t.name
            assert "--no-control-socket" in cmd, t.name


def test_malformed_metadata_is_skipped_with_reason() -> None:
    found = discover(FIXTURES)
    reasons = {s.name: s.reason for s in found.skipped}
    assert "not valid TOML" in reasons["fx-badmeta"]
    assert "no target.toml" in reasons["fx-nometa"]
    assert "kind" in reasons["fx-badkind"]
    assert "fx-ok" in found.names()  # the others still load


def test_argv_placeholders() -> None:
    t = discover(FIXTURES).select(["fx-ok"])[0]
    argv = t.argv(host="127.0.0.1", port=1234, workers=2, python="/py")
    assert argv[0] == "/py"
    assert "1234" in argv and "127.0.0.1" in argv


def _target_with(tmp: Path, name: str, command: str, setup: str = "") -> Path:
    """A copy of fx-ok under ``tmp`` whose ``command`` (and ``setup``) are the given TOML."""
    src = FIXTURES / "fx-ok"
    d = tmp / name
    d.mkdir()
    (d / "requirements.txt").write_text((src / "requirements.txt").read_text())
    lines = [
        ln for ln in (src / "target.toml").read_text().splitlines() if not ln.startswith("command")
    ]
    lines.append(f"command = {command}")
    if setup:
        lines.append(f"setup = {setup}")
    (d / "target.toml").write_text("\n".join(lines) + "\n")
    return d


def test_a_brace_in_the_command_skips_that_target_only(tmp_path: Path) -> None:
    base = '"{python}", "../_server.py", "--host", "{host}", "--port", "{port}"'
    _target_with(tmp_path, "good", f"[{base}]")
    _target_with(tmp_path, "good-escaped", f'[{base}, "--extra", "{{{{\\"a\\": 1}}}}"]')
    _target_with(tmp_path, "lone-open", f'[{base}, "--extra", "{{\\"a\\": 1"]')
    _target_with(tmp_path, "lone-close", f'[{base}, "--extra", "a}}"]')
    _target_with(tmp_path, "json-body", f'[{base}, "--extra", "{{\\"a\\": 1}}"]')
    _target_with(tmp_path, "unknown", f'[{base}, "--extra", "{{nope}}"]')
    _target_with(tmp_path, "empty", f'[{base}, "--extra", "{{}}"]')
    _target_with(tmp_path, "spec", f'[{base}, "--extra", "{{port:>5}}"]')
    _target_with(tmp_path, "escaped-host", '["x", "{{host}}", "--port", "{port}"]')
    _target_with(tmp_path, "bad-setup", f"[{base}]", setup='[["{python}", "-c", "{x"]]')

    found = discover(tmp_path)  # no exception: every bad folder is a Skipped
    reasons = {s.name: s.reason for s in found.skipped}
    assert found.names() == {"good", "good-escaped"}
    for name in ("lone-open", "lone-close", "json-body", "empty", "bad-setup"):
        assert "{{" in reasons[name] and "}}" in reasons[name], reasons[name]
    assert "command" in reasons["lone-open"] and "setup" in reasons["bad-setup"]
    assert "unknown placeholder {nope}" in reasons["unknown"]
    assert "format spec" in reasons["spec"]
    assert "must use {host}" in reasons["escaped-host"]  # {{host}} is a literal, not {host}

    escaped = found.select(["good-escaped"])[0]
    argv = escaped.argv(host="127.0.0.1", port=8000, workers=1, python="/py")
    assert argv[-1] == '{"a": 1}'


def _bench_toml(tmp: Path, run_targets: str, nightly_targets: str = '["good"]') -> Path:
    targets = tmp / "targets"
    targets.mkdir()
    base = '"{python}", "../_server.py", "--host", "{host}", "--port", "{port}"'
    _target_with(targets, "good", f"[{base}]")
    _target_with(targets, "broken", f'[{base}, "{{oops"]')
    cfg = tmp / "bench.toml"
    cfg.write_text(
        f'[paths]\ntargets_dir = "{targets}"\nenvs_dir = "{tmp / "envs"}"\n'
        f'reports_dir = "{tmp / "reports"}"\nhistory = "{tmp / "h.sqlite"}"\n'
        f"[run]\ntargets = {run_targets}\n[nightly]\ntargets = {nightly_targets}\n"
    )
    return cfg


@pytest.mark.parametrize("command", ["run", "bench", "nightly"])
def test_unknown_targets_name_where_they_came_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """From bench.toml: its key; from the flag: ``--targets``. Nothing starts either way."""
    cfg = _bench_toml(tmp_path, '["good", "nope"]', '["nope2"]')
    assert fwbench(["--config", str(cfg), command, "--targets", "good,nope3"]) == 2
    err = capsys.readouterr().err
    assert "fwbench: error: flag: --targets: unknown target(s): nope3" in err
    assert fwbench(["--config", str(cfg), command]) == 2
    err = capsys.readouterr().err
    key = "nightly.targets" if command == "nightly" else "run.targets"
    name = "nope2" if command == "nightly" else "nope"
    assert f"fwbench: error: bench.toml: {key}: unknown target(s): {name}" in err
    assert "flag:" not in err
    assert not (tmp_path / "reports").exists()


def test_a_skipped_target_asked_for_says_it_was_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = load_config(_bench_toml(tmp_path, '["good"]'))
    assert [t.name for t in discover_targets(cfg)] == ["good"]
    with pytest.raises(ConfigError) as err:
        discover_targets(cfg, ["broken"], flag="--targets")
    assert str(err.value).startswith("flag: --targets: unknown target(s): broken")
    assert "(broken: skipped, see above)" in str(err.value)
    assert "fwbench: skipped target broken: target.toml: command:" in capsys.readouterr().err


def test_docs_targets_md_says_what_the_code_does() -> None:
    """docs/targets.md: uv by its path after set-up, the HTML Content-Type the verifier wants,
    literal braces, and a removal pattern that matches the target's environments only."""
    import fnmatch

    from loadgen.checks import content_type_problem
    from loadgen.envs import env_path

    doc = (ROOT / "docs" / "targets.md").read_text(encoding="utf-8")
    assert "`.venv/bin/uv pip compile" in doc and "`uv pip compile" not in doc
    assert "not on `PATH`" in doc
    assert "`Content-Type: text/html`" in doc
    assert content_type_problem("html", "text/html; charset=utf-8") is None
    assert content_type_problem("html", "text/plain; charset=utf-8") is not None
    assert "`{{` or `}}`" in doc
    found = re.search(r"rm -rf \.envs/NAME-(\S+) \.envs/\.NAME\.lock", doc)
    assert found, "docs/targets.md: how to remove a target's environment"
    flask, granian = discover(ROOT / "targets").select(["flask", "flask-granian"])
    assert fnmatch.fnmatch(env_path(Path("envs"), flask, "0123456789ab").name, "flask-" + found[1])
    assert not fnmatch.fnmatch(
        env_path(Path("envs"), granian, "0123456789ab").name, "flask-" + found[1]
    )


def test_new_target_copies_a_working_one_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    targets = tmp_path / "targets"
    shutil.copytree(ROOT / "targets" / "flask", targets / "flask")
    cfg = tmp_path / "bench.toml"
    cfg.write_text(f'[paths]\ntargets_dir = "{targets}"\n')
    argv = ["--config", str(cfg), "new-target", "my-flask", "--from", "flask", "--no-lock"]
    assert fwbench(argv) == 0
    out = capsys.readouterr().out
    assert "created" in out and "fwbench verify my-flask" in out
    new = discover(targets)
    assert new.names() == {"flask", "my-flask"} and not new.skipped
    assert (targets / "my-flask" / "app.py").read_text() == (
        targets / "flask" / "app.py"
    ).read_text()
    assert fwbench(argv) == 2  # exists: nothing written
    assert "exists" in capsys.readouterr().err
    assert fwbench([*argv[:3], "Bad_Name", "--from", "flask", "--no-lock"]) == 2
    assert fwbench([*argv[:3], "x", "--from", "nope", "--no-lock"]) == 2
    assert not (targets / "x").exists()


@pytest.mark.e2e
def test_new_target_resolves_its_lock(tmp_path: Path) -> None:
    import shutil

    targets = tmp_path / "targets"
    shutil.copytree(ROOT / "targets" / "bottle", targets / "bottle")
    cfg = tmp_path / "bench.toml"
    cfg.write_text(f'[paths]\ntargets_dir = "{targets}"\n')
    assert fwbench(["--config", str(cfg), "new-target", "b2", "--from", "bottle"]) == 0
    lock = (targets / "b2" / "requirements.txt").read_text()
    assert "bottle==" in lock and "# via -r b2/requirements.in" in lock


# --- protocols, [commands] and the ws-echo scenario (HTTP/2 and WebSocket) --------------------

H2C = '["{python}", "srv.py", "--http2", "--host", "{host}", "--port", "{port}"]'
H2 = (
    '["{python}", "srv.py", "--tls", "{certfile}", "{keyfile}", "--host", "{host}", '
    '"--port", "{port}"]'
)


def _protocol_target(tmp: Path, extra: str, name: str = "proto") -> Path:
    """A copy of fx-ok under ``tmp`` with ``extra`` TOML lines appended (tables last)."""
    src = FIXTURES / "fx-ok"
    d = tmp / name
    d.mkdir()
    (d / "requirements.txt").write_text((src / "requirements.txt").read_text())
    (d / "target.toml").write_text((src / "target.toml").read_text() + extra)
    return d


def test_protocols_default_to_http1_and_are_kept_in_the_contract_order(tmp_path: Path) -> None:
    from loadgen.targets import load_target

    plain = load_target(_protocol_target(tmp_path, "", "plain"))
    assert plain.protocols == ("http1",) and plain.commands == ()
    t = load_target(
        _protocol_target(
            tmp_path,
            f'protocols = ["h2", "http1", "h2c"]\n[commands]\nh2c = {H2C}\nh2 = {H2}\n'
            '"ws-echo" = ["{python}", "srv.py", "--ws", "--host", "{host}", "--port", "{port}"]\n'
            '[scenarios]\n"ws-echo" = "/ws-echo/"\n',
        )
    )
    assert t.protocols == ("http1", "h2c", "h2")
    assert dict(t.scenarios) == {"ws-echo": "/ws-echo/"}
    assert t.to_dict()["protocols"] == ["http1", "h2c", "h2"]
    assert set(t.to_dict()["commands"]) == {"h2c", "h2", "ws-echo"}
    # the command of each trial: [commands] for its protocol or scenario, else `command`
    assert t.serving("hello", "h2c").command[2] == "--http2"
    assert t.serving("ws-echo").command[2] == "--ws"
    assert t.serving("hello") is t
    assert t.path_for("ws-echo") == "/ws-echo/"


def test_the_certificate_placeholders_are_filled_and_required(tmp_path: Path) -> None:
    from loadgen.targets import TargetError, load_target

    t = load_target(
        _protocol_target(tmp_path, f'protocols = ["http1", "h2"]\n[commands]\nh2 = {H2}\n')
    )
    assert t.needs_certificate()
    h2 = t.serving("hello", "h2")
    with pytest.raises(TargetError, match="certificate"):
        h2.argv(host="127.0.0.1", port=1, workers=1, python="/py")
    argv = h2.with_certificate("/run/tls/cert.pem", "/run/tls/key.pem").argv(
        host="127.0.0.1", port=1, workers=1, python="/py"
    )
    assert argv[3:5] == ["/run/tls/cert.pem", "/run/tls/key.pem"]
    # the HTTP/1.1 command needs no certificate, even on a target that has one
    assert t.argv(host="127.0.0.1", port=1, workers=1, python="/py")[0] == "/py"


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ('protocols = ["h3"]\n', "'h3' is not one of http1, h2c, h2"),
        ('protocols = ["h2c"]\n', "must include 'http1'"),
        ('protocols = ["http1", "http1"]\n', "lists a protocol twice"),
        ('protocols = "http1"\n', "expected a non-empty list of strings"),
        (f"[commands]\nh2c = {H2C}\n", "commands.h2c: h2c is not in protocols"),
        (f'protocols = ["http1", "h2c"]\n[commands]\nhttp1 = {H2C}\n', "http1 is `command`"),
        ('protocols = ["http1", "h2c"]\n[commands]\nh2c = ["x", "{port}"]\n', "must use {host}"),
        ('protocols = ["http1", "h2c"]\n[commands]\nh2c = "x"\n', "table of argument lists"),
        (f'[commands]\n"ws-echo" = {H2C}\n', "ws-echo is not in [scenarios]"),
        ('protocols = ["http1", "h2"]\n', "needs its TLS command"),
        (f'protocols = ["http1", "h2"]\n[commands]\nh2 = {H2C}\n', "{certfile} and {keyfile}"),
        (f'protocols = ["http1", "h2c"]\n[commands]\nh2c = {H2C.replace("{port}", "{prt}")}\n',
         "unknown placeholder {prt}"),
        ('[scenarios]\n"ws-echo" = "ws"\n', "must start with '/'"),
    ],
)  # fmt: skip
def test_bad_protocol_metadata_skips_the_target_with_the_key(
    tmp_path: Path, extra: str, reason: str
) -> None:
    _protocol_target(tmp_path, extra)
    found = discover(tmp_path)
    assert not found.targets
    assert reason in found.skipped[0].reason, found.skipped[0].reason


def test_a_protocol_or_ws_echo_not_declared_is_not_applicable(tmp_path: Path) -> None:
    from loadgen.targets import NOT_DECLARED, load_target

    plain = load_target(_protocol_target(tmp_path, "", "plain"))
    assert plain.not_applicable_reason("hello") is None
    assert "protocol h2c" in (plain.not_applicable_reason("hello", "h2c") or "")
    assert plain.not_applicable_reason("ws-echo") == NOT_DECLARED
    said = load_target(
        _protocol_target(
            tmp_path,
            'protocols = ["http1", "h2c"]\n[not_applicable]\n"ws-echo" = "no WebSocket support"\n',
            "said",
        )
    )
    assert said.not_applicable_reason("hello", "h2c") is None
    assert said.not_applicable_reason("ws-echo") == "no WebSocket support"
    assert "protocol h2" in (said.not_applicable_reason("hello", "h2") or "")
