"""Without the system libraries WeasyPrint lays pages out with, a PDF request says what to
install (503) instead of failing with an internal error; the other formats still work."""

from __future__ import annotations

import builtins
from typing import Any

import pytest

from reports import render
from reports.exceptions import PdfUnavailable


def test_a_pdf_without_pango_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def without_pango(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "weasyprint":  # what WeasyPrint raises when libpango cannot be loaded
            raise OSError("cannot load library 'libpango-1.0-0'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_pango)
    with pytest.raises(PdfUnavailable, match="pango") as missing:
        render.pdf("<p>report</p>")
    assert missing.value.status == 503
