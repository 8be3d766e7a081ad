"""multipart/form-data streamed into the blob store's `tmp/`: every part is hashed and counted
while it is written, the request refused (413) as soon as one passes the size limit, and every
temporary file removed again on any failure."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from reanimate.registry.api.errors import ApiError
from reanimate.registry.blobs import Incoming


@dataclass
class Part:
    name: str
    filename: str | None
    incoming: Incoming


@dataclass
class _State:
    parts: list[Part] = field(default_factory=list)
    headers: dict[str, bytes] = field(default_factory=dict)
    field_name: bytes = b""
    value: bytes = b""
    handle: object = None
    digest: object = None
    size: int = 0
    total: int = 0


async def receive_form(content_type: str, chunks: AsyncIterator[bytes], store, *,
                       max_size: int, max_parts: int) -> list[Part]:
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ApiError(422, "send the campaign as multipart/form-data (fields: campaign, files)")
    st = _State()

    def header_field(data: bytes, start: int, end: int) -> None:
        st.field_name += data[start:end]

    def header_value(data: bytes, start: int, end: int) -> None:
        st.value += data[start:end]

    def header_end() -> None:
        st.headers[st.field_name.decode("latin-1").lower()] = st.value
        st.field_name, st.value = b"", b""

    def headers_finished() -> None:
        disposition, params = parse_options_header(st.headers.get("content-disposition", b""))
        if disposition != b"form-data" or b"name" not in params:
            raise ApiError(422, "a multipart part has no Content-Disposition: form-data; name=")
        if len(st.parts) >= max_parts:
            raise ApiError(413, f"more than {max_parts} files in one submission")
        filename = params.get(b"filename")
        path, handle = store.temp()
        st.handle, st.digest, st.size = handle, hashlib.sha256(), 0
        st.parts.append(Part(params[b"name"].decode("utf-8", "replace"),
                             None if filename is None else filename.decode("utf-8", "replace"),
                             Incoming(path, "", 0)))

    def part_data(data: bytes, start: int, end: int) -> None:
        st.size += end - start
        st.total += end - start
        if st.total > max_size:
            raise ApiError(413, f"the submission is over the limit of {max_size} bytes")
        st.digest.update(data[start:end])
        st.handle.write(data[start:end])

    def part_end() -> None:
        st.handle.close()
        st.handle = None
        st.parts[-1].incoming.sha256, st.parts[-1].incoming.size = st.digest.hexdigest(), st.size
        st.headers = {}

    parser = MultipartParser(boundary, {
        "on_header_field": header_field, "on_header_value": header_value,
        "on_header_end": header_end, "on_headers_finished": headers_finished,
        "on_part_data": part_data, "on_part_end": part_end})
    try:
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
        if st.handle is not None:
            raise ApiError(422, "the multipart body ends inside a part")
        return st.parts
    except BaseException as exc:
        if st.handle is not None:
            st.handle.close()
        for part in st.parts:
            store.discard(part.incoming)
        if isinstance(exc, MultipartParseError):
            raise ApiError(422, f"not a valid multipart/form-data body ({exc})") from None
        raise
