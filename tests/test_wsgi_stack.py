"""The WSGI stack: its layers in the documented order, and the hooks features fill."""

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix

from project.errors import ErrorGuard
from project.ops.observe import RequestObserver
from project.wsgi_stack import SecurityHeaders, StripTrailingSlash, hooks


def layers(app) -> list[type]:
    """The stack's layer types, outermost first, down to Flask's own wsgi_app."""
    found, layer = [], app.wsgi_app
    while hasattr(layer, "wsgi_app") or isinstance(layer, ProxyFix):
        found.append(type(layer))
        layer = layer.app if isinstance(layer, ProxyFix) else layer.wsgi_app
    return found


@pytest.mark.app_config(TRUSTED_PROXY_COUNT=1)
def test_the_layers_wrap_in_the_documented_order(app):
    if app.extensions.get("tracing"):
        pytest.skip("tracing is on: OpenTelemetry adds its own layer")
    assert layers(app) == [ProxyFix, StripTrailingSlash, RequestObserver, SecurityHeaders, ErrorGuard]


def test_no_proxy_fix_without_trusted_proxies(app):
    assert ProxyFix not in layers(app)


def test_the_dashboard_declares_its_own_prefix(app):
    from project.ops.dashboard import URL_PREFIX

    assert hooks(app).keep_trailing_slash == [URL_PREFIX]


def test_a_declared_prefix_keeps_its_trailing_slash():
    seen = []
    strip = StripTrailingSlash(
        lambda environ, start_response: seen.append(environ["PATH_INFO"]), keep=("/mounted",)
    )
    for path in ("/api/v1/users/", "/mounted/", "/mounted/page/", "/", "/a//"):
        strip({"PATH_INFO": path}, None)
    assert seen == ["/api/v1/users", "/mounted/", "/mounted/page/", "/", "/a"]


def test_the_error_guards_answer_gets_the_security_headers():
    def failing(environ, start_response):
        raise RuntimeError("escaped Flask")

    answers = []
    body = SecurityHeaders(ErrorGuard(failing))(
        {}, lambda status, headers, exc_info=None: answers.append((status, headers))
    )
    status, headers = answers[0]
    assert status.startswith("500") and b"internal_error" in b"".join(body)
    assert ("X-Content-Type-Options", "nosniff") in headers
