"""A ``multipart/form-data`` body read as it arrives: the ``file`` part straight to disk, the rest as small fields.

Starlette's form parser spools a whole upload before the handler sees it; here the size limit stops the body at the
limit, and the file part never sits in memory (python-multipart's push parser, fed chunk by chunk).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from callscribe.server.errors import ApiError
from callscribe.server.uploads import Incoming, StoredUpload, UploadStore, too_large

FILE_FIELD = "file"
MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 64
FORM_SLACK = 1 << 20  # bytes a form may add around the file before Content-Length alone says "too large"


@dataclass
class Form:
    fields: dict[str, list[str]] = field(default_factory=dict)
    upload: StoredUpload | None = None

    def get(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else None

    def getlist(self, name: str) -> list[str]:
        """Values sent as ``name`` or ``name[]`` (how clients spell list fields)."""
        return [*self.fields.get(name, []), *self.fields.get(f"{name}[]", [])]


def _bad(message: str, code: str = "invalid_form", param: str | None = None) -> ApiError:
    return ApiError(400, message, code=code, param=param)


class _Parts:
    """python-multipart callbacks: headers of each part, then its data to a file or a field buffer."""

    def __init__(self, store: UploadStore, limit: int) -> None:
        self.store = store
        self.limit = limit
        self.form = Form()
        self.parts = 0
        self.ended = False
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None
        self._buffer: bytearray | None = None
        self._incoming: Incoming | None = None
        self._skip = False

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise _bad(f"more than {MAX_PARTS} form fields")
        self._headers = {}
        self._name, self._buffer, self._skip = None, None, False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_name.strip().lower()] = self._header_value.strip()
        self._header_name, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        if name == FILE_FIELD:
            if self.form.upload is not None or self._incoming is not None:
                raise _bad("more than one file in the form", param=FILE_FIELD)
            shown = filename.decode("utf-8", "replace") if filename is not None else None
            self._incoming = self.store.begin(shown, self.limit)
        elif filename is not None or not name:
            self._skip = True  # another file, or a part without a name: read past it
        else:
            self._name, self._buffer = name, bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._incoming is not None:
            self._incoming.write(data[start:end])
        elif self._buffer is not None:
            self._buffer += data[start:end]
            if len(self._buffer) > MAX_FIELD_BYTES:
                raise _bad(f"form field {self._name!r} is longer than {MAX_FIELD_BYTES} bytes", param=self._name)

    def on_part_end(self) -> None:
        if self._incoming is not None:
            incoming, self._incoming = self._incoming, None
            self.form.upload = incoming.commit()
        elif self._name is not None and self._buffer is not None:
            try:
                value = self._buffer.decode("utf-8")
            except UnicodeDecodeError:
                raise _bad(f"form field {self._name!r} is not UTF-8 text", param=self._name) from None
            self.form.fields.setdefault(self._name, []).append(value)
        self._name, self._buffer = None, None

    def on_end(self) -> None:
        self.ended = True

    def abort(self) -> None:
        if self._incoming is not None:
            self._incoming.discard()
            self._incoming = None
        if self.form.upload is not None:
            self.store.discard(self.form.upload)
            self.form.upload = None


async def read_form(request: Request, store: UploadStore, limit: int) -> Form:
    """Parse the request body; the caller releases ``form.upload`` when done with it."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise _bad("expected a multipart/form-data body with the audio in a 'file' field", "invalid_content_type")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + FORM_SLACK:
        raise too_large(limit)
    parts = _Parts(store, limit)
    parser = MultipartParser(boundary, parts.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            if chunk:
                await anyio.to_thread.run_sync(parser.write, chunk)
        parser.finalize()
        if not parts.ended:
            raise _bad("the multipart body ended early (incomplete upload)", "incomplete_body")
    except MultipartParseError as exc:
        parts.abort()
        raise _bad(f"malformed multipart body ({' '.join(str(exc).split())})") from None
    except BaseException:
        parts.abort()
        raise
    return parts.form
