"""Members' sheets as spreadsheet programs write them, built in the tests with the real encoders and openpyxl.

Shared by the sheet reader's tests, the API's, the command line's and the console's.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from typing import Any

import openpyxl

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

#: A Belgian coordinator's sheet: French header, accented names, Excel's trailing empty cells and rows.
BELGIAN_ROWS: list[list[Any]] = [
    ["Nom", "Prénom", "Téléphone", "E-mail", "Langue", "", ""],
    ["Lefèvre", "René", "0470 12 34 56", "rene.lefevre@example.org", "Français", "", ""],
    ["Dubœuf", "Hélène", "0471 22 33 44", "", "fr", "", ""],
    ["Müller", "Jürgen", "", "juergen@example.org", "Deutsch", "", ""],
    ["Claes", "Joëlle", "0472 98 76 54", "joelle@example.org", "NL", "", ""],
    ["", "", "", "", "", "", ""],
    ["", "", "", "", "", "", ""],
]
#: The members of ``BELGIAN_ROWS`` as they must arrive: names intact.
BELGIAN_NAMES = ["René Lefèvre", "Hélène Dubœuf", "Jürgen Müller", "Joëlle Claes"]


def csv_file(rows: Sequence[Sequence[Any]], *, delimiter: str = ",", encoding: str = "utf-8") -> bytes:
    """Rows written as a CSV in ``encoding`` (``utf-8-sig``: with a byte-order mark; ``utf-16``: with one too)."""
    text = io.StringIO()
    csv.writer(text, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return text.getvalue().encode(encoding)


def xlsx_file(tabs: dict[str, Sequence[Sequence[Any]]], *, hidden: Sequence[str] = ()) -> bytes:
    """A workbook with a sheet per entry of ``tabs`` (in order), written by openpyxl."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in tabs.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
        if title in hidden:
            sheet.sheet_state = "hidden"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def rewritten(archive: bytes, parts: dict[str, bytes]) -> bytes:
    """The zip ``archive`` with ``parts`` replaced (or added)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            if entry.filename not in parts:
                target.writestr(entry, source.read(entry.filename))
        for name, data in parts.items():
            target.writestr(name, data)
    return out.getvalue()


def zip_file(parts: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    return out.getvalue()


def sheet_xml(body: bytes, *, dimension: str = "A1:B2") -> bytes:
    """A worksheet part holding ``body`` (rows) as its sheet data."""
    return (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b'<dimension ref="' + dimension.encode() + b'"/><sheetData>' + body + b"</sheetData></worksheet>"
    )


def inline_row(number: int, cells: dict[str, str]) -> bytes:
    """A worksheet row of inline strings: ``{"A": "Nom"}``."""
    xml = "".join(f'<c r="{col}{number}" t="inlineStr"><is><t>{text}</t></is></c>' for col, text in cells.items())
    return f'<row r="{number}">{xml}</row>'.encode()


def zip_bomb(unpacked: int) -> bytes:
    """A workbook whose sheet unpacks to ``unpacked`` bytes of blanks, a few hundred kB packed."""
    base = xlsx_file({"Membres": [["Nom", "E-mail"], ["Anne", "anne@example.org"]]})
    filler = b" " * (unpacked - 200)
    return rewritten(base, {"xl/worksheets/sheet1.xml": sheet_xml(filler)})


def entity_bomb() -> bytes:
    """A workbook whose sheet is a "billion laughs" XML entity expansion (a cell of 10**9 "ha")."""
    laughs = b'<!ENTITY a0 "ha">' + b"".join(b'<!ENTITY a%d "%s">' % (i, b"&a%d;" % (i - 1) * 10) for i in range(1, 10))
    xml = sheet_xml(inline_row(1, {"A": "Nom"}) + b'<row r="2"><c r="A2" t="inlineStr"><is><t>&a9;</t></is></c></row>')
    xml = xml.replace(b"<worksheet ", b"<!DOCTYPE worksheet [" + laughs + b"]><worksheet ", 1)
    return rewritten(xlsx_file({"Membres": [["x"]]}), {"xl/worksheets/sheet1.xml": xml})


def ods_file() -> bytes:
    """An OpenDocument spreadsheet's container (its first entry names its type)."""
    return zip_file({"mimetype": b"application/vnd.oasis.opendocument.spreadsheet", "content.xml": b"<x/>"})


def xls_file() -> bytes:
    """The start of an Excel 97-2003 workbook: an OLE compound file."""
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
