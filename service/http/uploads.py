"""A `multipart/form-data` upload read as a stream: its file part's bytes are handed on as
they arrive, its other fields kept (small, bounded).

FastAPI's `UploadFile` (Starlette's form parser) is not used: it spools the whole file to a
temporary file (1 MB in memory, then disk, without bound) before the handler runs, so an upload
would be written twice and its size judged only once it is all on disk. Here python-multipart's
push parser (the one Starlette uses) is fed from `request.stream()`, and the file's pieces come
out of `file_chunks()` while the body still streams in: the store writes them as they come and
stops the upload at its size limit (`Files.write_content`). Fields sent after the file are read
too: they are known once `file_chunks()` is exhausted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from service.errors import InvalidRequestError, PayloadTooLargeError

MAX_FIELD_BYTES = 64 * 1024  # a form field that is not the file (`purpose`, ...)
MAX_FIELDS = 32


def _malformed(detail: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"The body is not valid multipart/form-data ({detail}).", param=None, code="invalid_value"
    )


@dataclass(slots=True)
class _Part:
    name: str = ""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)
    header_name: bytes = b""
    header_value: bytes = b""
    disposition: bytes = b""


class MultipartUpload:
    """One upload: `file_chunks()` streams the part named `file_field`; `fields` and
    `filename` are complete once it is exhausted. A second file part, a field over
    `MAX_FIELD_BYTES` or a body that is not multipart raise a 4xx."""

    def __init__(
        self,
        request: Request,
        *,
        file_field: str = "file",
        before_file: Callable[[dict[str, str]], None] | None = None,
    ) -> None:
        content_type, options = parse_options_header(request.headers.get("content-type", ""))
        if content_type != b"multipart/form-data":
            raise InvalidRequestError(
                "The body must be multipart/form-data (a `file` part and its form fields).",
                param=None,
                code="invalid_value",
            )
        boundary = options.get(b"boundary")
        if not boundary:
            raise _malformed("no boundary in its Content-Type")
        self._request = request
        self._file_field = file_field
        self._before_file = before_file  # sees the fields sent before the file; may refuse
        self.fields: dict[str, str] = {}
        self.filename: str | None = None  # None: no file part came
        self._part = _Part()
        self._pieces: list[bytes] = []
        self._in_file = False
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._part_begin,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
            },
        )

    async def file_chunks(self) -> AsyncIterator[bytes]:
        """The file part's bytes as they arrive; the rest of the body is parsed on the way."""
        try:
            async for chunk in self._request.stream():
                self._parser.write(chunk)
                pieces, self._pieces = self._pieces, []
                for piece in pieces:
                    yield piece
            self._parser.finalize()
        except MultipartParseError as err:
            raise _malformed(str(err)) from None

    # python-multipart's callbacks (data is a view of the chunk being parsed: copy it out)

    def _part_begin(self) -> None:
        self._part = _Part()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._part.header_name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._part.header_value += data[start:end]

    def _header_end(self) -> None:
        if self._part.header_name.lower() == b"content-disposition":
            self._part.disposition = self._part.header_value
        self._part.header_name = self._part.header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._part.disposition)
        if b"name" not in options:
            raise _malformed('a part without a Content-Disposition "name"')
        self._part.name = options[b"name"].decode("utf-8", errors="replace")
        if self._part.name != self._file_field:
            return
        if self.filename is not None:
            raise InvalidRequestError("Send one file per upload.", param=self._file_field)
        self.filename = options.get(b"filename", b"upload").decode("utf-8", errors="replace")
        self._in_file = True
        if self._before_file is not None:
            self._before_file(self.fields)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._pieces.append(bytes(data[start:end]))
            return
        self._part.data += data[start:end]
        if len(self._part.data) > MAX_FIELD_BYTES:
            raise PayloadTooLargeError(
                f"The form field '{self._part.name}' is longer than {MAX_FIELD_BYTES} bytes.",
                param=self._part.name,
            )

    def _part_end(self) -> None:
        if self._in_file:
            self._in_file = False
            return
        if len(self.fields) >= MAX_FIELDS:
            raise _malformed(f"more than {MAX_FIELDS} fields")
        self.fields[self._part.name] = self._part.data.decode("utf-8", errors="replace")
