"""File uploads (the advocates' data page): a larger body limit there, the bytes held in memory.

Everywhere else a body is a small form or report (``MAX_CONTENT_LENGTH``, 16 KB). A file of
past documentation holds exact points: Werkzeug would spool an upload over 500 KB to a
temporary file on disk, so uploads here stay in memory, within ``UPLOAD_MAX_BYTES``.
"""

from __future__ import annotations

import io
from typing import IO

from flask import Request as FlaskRequest

from mapsvc.settings import settings

#: The endpoints that take a file, and so the larger limit.
UPLOAD_ENDPOINTS = frozenset({"advocacy.data_districts", "advocacy.data_reports"})


class Request(FlaskRequest):
    """Flask's request, with the upload endpoints' limit and in-memory file parts."""

    @property
    def max_content_length(self) -> int | None:
        """Return the body limit: ``UPLOAD_MAX_BYTES`` for an upload endpoint, else the app's."""
        if self._max_content_length is None and self.endpoint in UPLOAD_ENDPOINTS:
            return settings().http.upload_max_bytes
        return super().max_content_length

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        """Hold a file part in memory (the body limit above bounds it), never in a temporary file."""
        return io.BytesIO()
