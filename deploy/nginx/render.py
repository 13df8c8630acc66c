"""The proxy's config without the nginx image: deploy/nginx/templates/api.conf.template filled
in as the image fills it, inside a whole nginx.conf like the image's own.

    NGINX_PORT=8080 API_UPSTREAM=127.0.0.1:8000 ... python deploy/nginx/render.py DIR > nginx.conf

DIR is where nginx keeps its pid file and temporary files. The topology tests and the HTTP
benchmark start nginx with this (`render(variables, directory)`); an operator running nginx
from a distribution's package may too.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "templates" / "api.conf.template"
KNOBS = (
    "NGINX_PORT",
    "API_UPSTREAM",
    "MAX_CONTENT_LENGTH",
    "NGINX_CLIENT_TIMEOUT",
    "NGINX_UPSTREAM_TIMEOUT",
    "NGINX_STATIC_ROOT",
)
# The official image's /etc/nginx/nginx.conf, in short: the template goes in its `http` block.
# `user root` only matters when nginx starts as root (a test machine); the image has its own.
MAIN = """
user root;
worker_processes auto;
pid {dir}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{body}
}}
"""


def envsubst(text: str, variables: dict[str, str]) -> str:
    """What the image does to a template: `${NAME}` and `$NAME` replaced for the names given,
    every other `$...` (nginx's own variables) left alone."""
    pattern = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
    return pattern.sub(lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), text)


def loopback_variables(port: int, upstream_port: int) -> dict[str, str]:
    """The knobs for nginx on 127.0.0.1:`port` in front of gunicorn on 127.0.0.1:`upstream_port`
    with compose's defaults (the topology tests and the HTTP benchmark)."""
    return {
        "NGINX_PORT": f"127.0.0.1:{port}",
        "API_UPSTREAM": f"127.0.0.1:{upstream_port}",
        "MAX_CONTENT_LENGTH": "1048576",
        "NGINX_CLIENT_TIMEOUT": "10s",
        "NGINX_UPSTREAM_TIMEOUT": "35s",
        "NGINX_STATIC_ROOT": str(Path(__file__).resolve().parents[2] / "project" / "static"),
    }


def render(variables: dict[str, str], directory: Path | str) -> str:
    """A whole nginx.conf: the template with `variables` (every knob), nginx's files in `directory`."""
    missing = [name for name in KNOBS if not variables.get(name)]
    if missing:
        raise ValueError(f"the proxy template needs {', '.join(missing)}")
    return MAIN.format(dir=directory, body=envsubst(TEMPLATE.read_text(), variables))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        print(render({name: os.environ.get(name, "") for name in KNOBS}, Path(sys.argv[1]).resolve()))
    except ValueError as exc:
        sys.exit(f"error: {exc}")
