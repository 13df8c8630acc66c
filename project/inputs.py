"""How a request's input is read, bounded and checked: the one place.

- The body: at most `MAX_CONTENT_LENGTH` bytes (a 413 before anything reads it). A body
  without a length (`Transfer-Encoding: chunked`) is read whole first, counted as it arrives:
  past the limit it is a 413 with none of it processed (`read_streamed_body`).
- JSON, through the app's JSON provider (`request.get_json()`, here, before the route; the
  schemas then read bytes that passed these checks): not valid JSON is a 400; text holding
  NUL or a lone surrogate, NaN/Infinity, integers of more than `MAX_INT_DIGITS` digits, floats
  beyond the double range and nesting deeper than `MAX_JSON_DEPTH` are a 422. Checked without
  recursion, so no input can raise a RecursionError.
- Path, query, form and headers: no NUL (PostgreSQL text cannot hold it).
- Arguments parsed by a schema (`StrictParser`, every blueprint's parser): a known query
  parameter given twice is a 422 (the route would read one value, a cache key another);
  a number in a JSON body must be a JSON number (`"5"` is a 422); a numeric query value is
  ASCII digits with an optional sign and decimal point (`1_000`, `١٢`, ` 5 ` are a 422:
  Python's int() and Decimal() accept all three).

`check_request_input` runs before every route, so nothing below it meets such input.
"""

from __future__ import annotations

import io
import json
import math
import re
from typing import Any

from flask import Flask, Request, request
from flask.json.provider import DefaultJSONProvider
from marshmallow import Schema, ValidationError, fields
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import RequestEntityTooLarge

from project.errors import BadRequest, Unprocessable

MAX_JSON_DEPTH = 32
# Beyond any field's range (the schemas bound every number); longer than Python's 4,300-digit
# int conversion limit, json.loads raises a ValueError that would otherwise escape as a 500.
MAX_INT_DIGITS = 100
INT_LIMIT = 10**MAX_INT_DIGITS
# NUL, and UTF-16 surrogate code points: after JSON decoding a pair has become one character,
# so any surrogate left in a str is a lone one (not encodable as UTF-8).
BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
# In an ASCII document either can only come from a \u escape (a raw NUL is malformed JSON), so
# an ASCII document without such an escape needs no string looked at. (json.loads decodes bytes
# with "surrogatepass": UTF-8-encoded surrogates are not ASCII, so they get the full check.)
BAD_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
BAD_ESCAPE_BYTES = re.compile(BAD_ESCAPE.pattern.encode())
NUL_MESSAGE = "Text must not contain the NUL character (\\u0000)."
DIGITS_MESSAGE = f"Numbers must have at most {MAX_INT_DIGITS} digits."
DEPTH_MESSAGE = f"JSON must not be nested more than {MAX_JSON_DEPTH} levels deep."


class UnsafeJSON(ValueError):
    """Valid JSON the API refuses (a 422): bad text, bad numbers, nesting too deep."""


def _check_text(text: str) -> None:
    found = BAD_TEXT.search(text)
    if found:
        raise UnsafeJSON(NUL_MESSAGE if found.group() == "\x00" else "Text must be valid Unicode.")


def _check_scalar(value: Any, texts: bool) -> None:
    kind = type(value)
    if kind is str:
        if texts:
            _check_text(value)
    elif kind is int:
        if not -INT_LIMIT < value < INT_LIMIT:
            raise UnsafeJSON(DIGITS_MESSAGE)
    elif kind is float and not math.isfinite(value):  # NaN, Infinity, and 1e400 (parsed as inf)
        raise UnsafeJSON("Numbers must be finite and within the range of a double.")


def check_json_value(value: Any, texts: bool = True) -> None:
    """Depth, numbers and (if `texts`) strings of a decoded document, walked with an explicit
    stack: no recursion, one pass over the containers."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if type(item) is dict:
            children: Any = item.values()
            if texts:
                for key in item:
                    _check_text(key)
        elif type(item) is list:
            children = item
        else:
            _check_scalar(item, texts)
            continue
        if depth > MAX_JSON_DEPTH:
            raise UnsafeJSON(DEPTH_MESSAGE)
        for child in children:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
            else:
                _check_scalar(child, texts)


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing what the API must never meet (see the module docstring)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            value = json.loads(s, **kwargs)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise  # malformed: a 400
        except ValueError as exc:  # an integer past Python's conversion limit
            raise UnsafeJSON(DIGITS_MESSAGE) from exc
        except RecursionError as exc:
            raise UnsafeJSON(DEPTH_MESSAGE) from exc
        escapes = BAD_ESCAPE_BYTES if isinstance(s, bytes | bytearray) else BAD_ESCAPE
        texts = not s.isascii() or escapes.search(s) is not None  # type: ignore[arg-type]
        check_json_value(value, texts=texts)
        return value


class AppRequest(Request):
    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if isinstance(e, UnsafeJSON):
            raise Unprocessable(str(e), errors={"json": [str(e)]})
        # The same answer webargs gives, so every route says it alike.
        raise BadRequest("The request body is malformed; see errors.", {"json": ["Invalid JSON body."]})


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _has_nul(values: list[str]) -> bool:
    return any("\x00" in value for value in values)


def _environ_has_nul(environ: dict) -> bool:
    """NUL in the path, the query (raw, or percent-encoded: the only way a decoded query gets
    one) or a header: one look at the WSGI strings, no request wrappers built."""
    if "%00" in environ.get("QUERY_STRING", ""):
        return True
    return any("\x00" in value for value in environ.values() if type(value) is str)


STREAM_READ_BYTES = 64 * 1024


def read_streamed_body(environ: dict, limit: int) -> None:
    """A body of unknown length (chunked; the WSGI server de-chunks it and says so with
    `wsgi.input_terminated`): read it now, counting, and past `limit` bytes raise a 413 at
    once, without reading the rest. Werkzeug alone would hand the route the first `limit`
    bytes as if they were the whole body. The body read is put back for the request to parse."""
    stream = environ["wsgi.input"]
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = stream.read(min(STREAM_READ_BYTES, limit + 1 - size))
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise RequestEntityTooLarge(f"The request body must be at most {limit} bytes.")
        chunks.append(chunk)
    environ["wsgi.input"] = io.BytesIO(b"".join(chunks))


def check_request_input() -> None:
    """Before every route: the body's size, then NUL anywhere, then the JSON body (if any)."""
    limit = request.max_content_length
    environ = request.environ
    # First, before anything reads `request.stream` (it is built once, from this environ). A
    # body without a length comes only with Transfer-Encoding (chunked): the one dict lookup
    # is all other requests pay.
    if (
        "HTTP_TRANSFER_ENCODING" in environ
        and limit is not None
        and environ.get("wsgi.input_terminated")
        and request.content_length is None
    ):
        read_streamed_body(environ, limit)
    if limit is not None and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge(f"The request body must be at most {limit} bytes.")
    if _environ_has_nul(request.environ):
        raise Unprocessable(NUL_MESSAGE)
    if not request.environ.get("CONTENT_TYPE"):
        return  # no body type: no form, no JSON to look at (a GET, mostly)
    if request.mimetype in FORM_TYPES and _has_nul(
        [*request.form.keys(), *(v for _, vs in request.form.lists() for v in vs)]
    ):
        raise Unprocessable(NUL_MESSAGE)
    # An empty body is no body (webargs reads it so too); anything else is parsed and checked now.
    if request.is_json and request.get_data(cache=True):
        request.get_json()


def register_input_checks(app: Flask) -> None:
    app.request_class = AppRequest
    provider = JSONProvider(app)
    if isinstance(app.json, DefaultJSONProvider):
        provider.sort_keys = app.json.sort_keys  # keep what create_app chose (the schemas' order)
    app.json = provider
    app.before_request(check_request_input)


# --- arguments parsed by a schema ---------------------------------------------------------

ASCII_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
TWICE_MESSAGE = "Given more than once."
JSON_NUMBER_MESSAGE = "Must be a JSON number, not a string."
QUERY_NUMBER_MESSAGE = "Must be a number in ASCII digits (optional sign and decimal point)."


def _is_number(field: fields.Field) -> bool:
    return isinstance(field, fields.Number)


def _is_many(field: fields.Field) -> bool:
    return isinstance(field, fields.List | fields.Tuple)  # webargs' DelimitedList is a List


def query_values(args: Any, names: Any) -> dict[str, str]:
    """Each of `names` present in `args` (a MultiDict) with its one value; a name given more
    than once is a 422. Shared by the parser and the cache key, so both read the same value."""
    values, twice = {}, {}
    for name in names:
        given = args.getlist(name)
        if len(given) > 1:
            twice[name] = [TWICE_MESSAGE]
        elif given:
            values[name] = given[0]
    if twice:
        raise Unprocessable("A query parameter is given more than once.", errors={"query": twice})
    return values


def _query_problems(schema: Schema, args: Any) -> dict[str, list[str]]:
    single = {(f.data_key or n): f for n, f in schema.fields.items() if not _is_many(f)}
    values = query_values(args, single)
    return {
        name: [QUERY_NUMBER_MESSAGE]
        for name, value in values.items()
        if _is_number(single[name]) and not ASCII_NUMBER.fullmatch(value)
    }


def _json_problems(schema: Schema, data: Any) -> dict:
    """Numbers given as strings (or anything but a number) in a body, nested schemas
    included, in marshmallow's error layout."""
    if not isinstance(data, dict):
        return {}
    problems: dict = {}
    for name, field in schema.fields.items():
        key = field.data_key or name
        if key not in data or data[key] is None:
            continue
        found = _field_problems(field, data[key])
        if found:
            problems[key] = found
    return problems


def _field_problems(field: fields.Field, value: Any) -> Any:
    if _is_number(field):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else [JSON_NUMBER_MESSAGE]
    if isinstance(field, fields.Nested) and isinstance(field.schema, Schema):
        if field.many and isinstance(value, list):
            found = {i: p for i, item in enumerate(value) if (p := _json_problems(field.schema, item))}
            return found or None
        return _json_problems(field.schema, value) or None
    if isinstance(field, fields.List) and isinstance(value, list):
        found = {i: p for i, item in enumerate(value) if (p := _field_problems(field.inner, item))}
        return found or None
    return None


class StrictParser(FlaskParser):
    """webargs' Flask parser, refusing what its fields would quietly accept (module docstring)."""

    def pre_load(self, location_data: Any, *, schema: Schema, req: Any, location: str) -> Any:
        if location in ("query", "querystring"):
            problems = _query_problems(schema, req.args)
        elif location == "json":
            problems = _json_problems(schema, location_data)
        else:
            problems = {}
        if problems:
            raise ValidationError(problems)
        return location_data
