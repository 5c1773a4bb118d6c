"""The deployment files, checked without a Docker engine (none runs on this machine): both compose
files valid against the Compose Specification's schema, every setting of core/settings.py in
.env.example and reaching the containers, production's nginx the same as development's but for
TLS and rate limits, and the Makefile's docker targets."""

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
COMPOSE_PROD = REPO / "docker-compose.prod.yml"
ENV_EXAMPLE = REPO / ".env.example"
SETTINGS = [REPO / "core" / "settings.py", REPO / "core" / "settings_command.py"]
NGINX = REPO / "docker" / "nginx.conf"
NGINX_PROD = REPO / "docker" / "nginx.prod.conf.template"
TIDELOG_SERVICES = {"migrate", "command-api", "query-api", "worker", "scheduler", "projections"}


def load_compose(path: Path) -> Any:
    """The file as Compose reads it: `!override` and `!reset` (Compose 2.24+) are tags on a value,
    kept here as the plain value."""
    yaml = YAML(typ="safe", pure=True)
    for tag in ("!override", "!reset"):
        yaml.constructor.add_constructor(tag, _untagged)
    return yaml.load(path.read_text())


def _untagged(constructor: Any, node: Any) -> Any:
    if node.id == "sequence":
        return constructor.construct_sequence(node, deep=True)
    if node.id == "mapping":
        return constructor.construct_mapping(node, deep=True)
    return constructor.construct_scalar(node)


def compose_spec_schema() -> dict[str, Any]:
    """The Compose Specification's JSON schema, as check-jsonschema vendors it (no network)."""
    from importlib.resources import files

    return json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text())


def validator() -> Any:
    """A validator of the schema's own draft (2020-12)."""
    from jsonschema.validators import validator_for

    schema = compose_spec_schema()
    return validator_for(schema)(schema)


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_PROD], ids=lambda p: p.name)
def test_each_compose_file_is_valid_against_the_compose_specification(path):
    errors = sorted(validator().iter_errors(load_compose(path)), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_a_compose_file_breaking_the_schema_is_caught(tmp_path):
    """The check above can fail: a service with a misspelt key does."""
    broken = tmp_path / "broken.yml"
    broken.write_text("services:\n  web:\n    image: nginx\n    restrat: always\n")
    assert [e.message for e in validator().iter_errors(load_compose(broken))] == [
        "Unevaluated properties are not allowed ('restrat' was unexpected)"
    ]


def test_production_only_overrides_services_the_development_file_defines():
    dev, prod = load_compose(COMPOSE), load_compose(COMPOSE_PROD)
    assert set(prod["services"]) <= set(dev["services"])
    # One place for settings: production sets no Tidelog process's environment of its own.
    for name in TIDELOG_SERVICES & set(prod["services"]):
        assert "environment" not in prod["services"][name], name


def settings_read() -> set[str]:
    names = set()
    for path in SETTINGS:
        names |= set(re.findall(r"env(?:_int|_float|_bool)?\(\"([A-Za-z_]+)\"", path.read_text()))
    return names


def test_env_example_names_every_setting_and_every_compose_variable():
    listed = set(re.findall(r"^#?\s*([A-Za-z_][A-Za-z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    missing = settings_read() - listed
    assert not missing, f"settings read by core/settings.py but not in .env.example: {sorted(missing)}"
    interpolated = set()
    for path in (COMPOSE, COMPOSE_PROD):
        interpolated |= set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", path.read_text()))
    missing = interpolated - listed
    assert not missing, f"variables of the compose files not in .env.example: {sorted(missing)}"


def test_every_setting_reaches_the_tidelog_containers():
    """Each Tidelog service gets the whole .env (env_file) and the shared environment block; a
    variable the block names must be one the settings read (or a library's own)."""
    dev = load_compose(COMPOSE)
    libraries = {"PROMETHEUS_MULTIPROC_DIR"}
    for name in TIDELOG_SERVICES:
        service = dev["services"][name]
        assert service["env_file"] == [{"path": ".env", "required": False}], name
        unknown = set(service["environment"]) - settings_read() - libraries
        assert not unknown, f"{name} sets variables nothing reads: {sorted(unknown)}"


def http_block_settings(text: str) -> list[str]:
    """The directive lines of nginx's http block outside its server blocks."""
    body = text.split("http {", 1)[1]
    outside = re.sub(r"\n    server \{.*?\n    \}\n", "\n", body, flags=re.S)
    outside = re.sub(r"\n    upstream \w+ \{.*?\n    \}\n", "\n", outside, flags=re.S)
    return [line.strip() for line in outside.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_production_nginx_keeps_every_setting_of_development_and_its_routes():
    dev, prod = NGINX.read_text(), NGINX_PROD.read_text()
    prod_settings = http_block_settings(prod)
    assert not [line for line in http_block_settings(dev) if line not in prod_settings]
    for upstream in re.findall(r"\n    upstream \w+ \{.*?\n    \}\n", dev, flags=re.S):
        assert upstream in prod
    assert prod.count("include /etc/nginx/tidelog-routes.conf;") == 1
    assert "listen 443 ssl;" in prod and "return 308 https://$host$request_uri;" in prod
    assert re.search(r"limit_req zone=per_key .*\n\s*limit_req zone=per_client", prod)


def test_the_production_nginx_template_renders_every_variable_compose_gives_it():
    prod = load_compose(COMPOSE_PROD)["services"]["nginx"]["environment"]
    template = NGINX_PROD.read_text()
    # The nginx image's envsubst replaces ${NAME} of the environment only; nginx's own $vars stay.
    needed = set(re.findall(r"\$\{([A-Z_]+)\}", template))
    assert needed and needed <= set(prod)
    rendered = re.sub(r"\$\{([A-Z_]+)\}", lambda m: re.sub(r"\$\{\w+:-(.*)\}", r"\1", prod[m[1]]), template)
    assert "${" not in rendered
    assert "rate=2000r/s" in rendered and "burst=200 nodelay" in rendered


def make_dry_run(*arguments: str) -> str:
    """What `make -n` prints, as from a shell (under `make test` the variables of the outer make
    would make it print its directory changes)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    done = subprocess.run(["make", "--no-print-directory", "-n", *arguments], cwd=REPO, env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return " ".join(done.stdout.split())


def test_the_makefile_has_the_seeds_docker_commands():
    for target, expected in {
        "up": "docker compose -f docker-compose.yml up -d --build --wait",
        "down": "docker compose -f docker-compose.yml down",
        "logs": "docker compose -f docker-compose.yml logs -f --tail=200",
        "shell": "docker compose -f docker-compose.yml exec query-api python manage.py shell",
        "migrate": "docker compose -f docker-compose.yml run --rm migrate",
        "createsuperuser": "docker compose -f docker-compose.yml exec query-api python manage.py createsuperuser",
    }.items():
        assert make_dry_run(target) == expected, target
    assert "-f docker-compose.yml -f docker-compose.prod.yml up" in make_dry_run("up", "ENV=prod")
