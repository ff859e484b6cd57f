"""Members' sheets: the file a coordinator uploads (CSV or Excel .xlsx), read into numbered rows.

The bulk import (``POST /v1/plps/{id}/members/import``) reads every uploaded file through this
module, and ``plp members import`` sends the file's bytes as they are, so both read a sheet
the same way. A sheet is what Excel, LibreOffice or Numbers write in Belgium:

- CSV separated by ``;`` (Excel in a French, Dutch or German locale), ``,`` or tab, told apart
  by which one splits the header into known column names; in UTF-8 with or without a
  byte-order mark, UTF-16 (Excel's "Unicode text"), or the "ANSI" code pages Excel writes
  plain CSV in (Windows-1252, Mac Roman), told apart by charset-normalizer;
- Excel workbooks (.xlsx, .xlsm), read with openpyxl: the first visible tab, or the one named;
- column names in French, Dutch, German or English (``Nom;Téléphone;E-mail;Langue``), title
  rows above the header, empty rows and columns Excel leaves, phone numbers Excel turned into
  numbers (``470123456``, ``32470123456``, ``4.7e8``), dates.

Rows are numbered as the spreadsheet numbers them: the header is the row it is on, and a cell
holding a line break does not shift the rows after it. A file that cannot be read raises
``SheetError`` carrying the HTTP status to answer (413 too large, 415 a format to convert
first, 422 unreadable) and a sentence saying what to do. A row with a bad cell becomes a
``RowError`` in its place, which the import reports beside its neighbours.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import charset_normalizer
import openpyxl
import phonenumbers
from openpyxl.utils import get_column_letter

from dispatcher.people.membership import RowError

#: Media types the import reads as a sheet; the bytes decide between CSV and a workbook, since
#: browsers name a .csv file after the program that opens it (``application/vnd.ms-excel`` on Windows).
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHEET_TYPES = frozenset(
    {
        "text/csv",
        "text/plain",
        "text/tab-separated-values",
        "application/csv",
        "application/octet-stream",
        "application/vnd.ms-excel",
        XLSX,
        "application/vnd.ms-excel.sheet.macroenabled.12",
        "application/vnd.oasis.opendocument.spreadsheet",
    }
)
#: The encodings a spreadsheet program writes a CSV in, besides UTF-8 and UTF-16 with a byte-order
#: mark: Excel's "CSV" is in the system's code page (Windows-1252 in Belgium, Mac Roman on a Mac).
LEGACY_ENCODINGS = ("cp1252", "mac_roman", "utf_16_le", "utf_16_be")
#: The column separators tried, in this order on a tie.
DELIMITERS = (",", ";", "\t")
#: How many non-empty rows may stand above the header (a title, a date, a blank line).
HEADER_SEARCH = 10
#: Columns read in a workbook: a members' sheet has a handful; a cell past this one is not read.
MAX_COLUMNS = 64
#: The largest row number of a sheet (Excel's own limit).
MAX_SHEET_ROW = 1_048_576
#: What the XML parts of a workbook may unpack to (a 10,000-member sheet is about 5 MB):
#: more is refused before anything is unpacked, so a zip bomb costs nothing.
MAX_UNPACKED_BYTES = 32 * 1024 * 1024
#: Entries a workbook's zip may hold.
MAX_ZIP_ENTRIES = 2000

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Excel 97-2003 (.xls), and any password-protected workbook

# openpyxl warns about parts of a workbook it drops (data validation, unknown extensions), which an
# import does not read; the warnings would only reach the service's stderr.
warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl(\.|$)")


def _key(text: str) -> str:
    """A header or value as compared: lower case, without accents or punctuation (``E-mail`` → ``e mail``)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain.lower()).split())


def _aliases(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {_key(alias): name for name, aliases in table.items() for alias in (name, *aliases)}


#: Column names, as coordinators write them in the four languages of the service.
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "name": ("nom", "naam", "full name", "nom complet", "nom et prénom", "nom prénom", "volledige naam",
             "naam en voornaam", "vollständiger name", "last name", "surname", "nom de famille", "achternaam",
             "familienaam", "nachname", "familienname"),
    "first_name": ("first name", "firstname", "given name", "prénom", "voornaam", "vorname"),
    "phone": ("mobile", "mobile phone", "phone number", "mobile number", "téléphone", "tél", "tel", "gsm",
              "portable", "numéro de téléphone", "numéro de gsm", "n° gsm", "gsm nummer", "telefoon",
              "telefoonnummer", "mobiel", "mobiel nummer", "telefon", "telefonnummer", "handy", "handynummer",
              "mobiltelefon", "mobilnummer"),
    "email": ("e-mail", "mail", "courriel", "adresse e-mail", "adresse email", "adresse mail", "e-mailadres",
              "emailadres", "mailadres", "e-mail-adresse", "email address", "e-mail address"),
    "language": ("lang", "langue", "taal", "sprache"),
    "channels": ("channel", "canaux", "canal", "kanalen", "kanaal", "kanäle", "kanal"),
    "consent_at": ("consent", "consent date", "consentement", "date de consentement", "date du consentement",
                   "date d'inscription", "toestemming", "datum toestemming", "inschrijvingsdatum", "einwilligung",
                   "einwilligungsdatum", "anmeldedatum"),
    "whatsapp": ("whatsapp consent", "consentement whatsapp", "accord whatsapp", "whatsapp toestemming",
                 "toestemming whatsapp", "whatsapp-einwilligung", "einwilligung whatsapp"),
    "street": ("rue", "straat", "strasse", "straße", "street name", "nom de rue", "straatnaam"),
    "number": ("house number", "numéro", "n°", "no", "nr", "huisnummer", "hausnummer", "numéro de maison"),
    "postcode": ("postal code", "zip", "zip code", "code postal", "cp", "postnummer", "postcode", "plz",
                 "postleitzahl"),
    "commune": ("city", "town", "municipality", "localité", "ville", "gemeente", "plaats", "gemeinde", "ort"),
    "lat": ("latitude", "breedtegraad", "breitengrad"),
    "lon": ("lng", "long", "longitude", "lengtegraad", "längengrad"),
}  # fmt: skip
COLUMNS = tuple(COLUMN_NAMES)
_COLUMN = _aliases(COLUMN_NAMES)
_LANGUAGE = _aliases(
    {
        "fr": ("f", "fra", "fre", "français", "french", "frans", "französisch", "francophone"),
        "nl": ("n", "nld", "dut", "nederlands", "néerlandais", "dutch", "vlaams", "flamand", "flemish",
               "niederländisch", "néerlandophone"),
        "de": ("d", "deu", "ger", "deutsch", "allemand", "duits", "german", "germanophone"),
        "en": ("e", "eng", "english", "anglais", "engels", "englisch"),
    }
)  # fmt: skip
_CHANNEL = _aliases(
    {
        "sms": ("texto", "text", "sms bericht"),
        "email": ("e-mail", "mail", "courriel"),
        "telegram": (),
        "voice": ("call", "phone call", "voix", "appel", "appel vocal", "spraak", "oproep", "stem", "anruf",
                  "sprache", "sprachanruf"),
    }
)  # fmt: skip
_DAY_FIRST = ("%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%d/%m/%y", "%d-%m-%y", "%d.%m.%y")
_SCIENTIFIC = re.compile(r"[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+")


class SheetError(Exception):
    """A file that cannot be read as a members' sheet: the HTTP status to answer and what to do."""

    def __init__(self, status: int, title: str, detail: str, *, field: str = "body") -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.errors = [{"field": field, "reason": detail}]


class _CellError(ValueError):
    """A cell that cannot be read; the message says why, for a coordinator."""


@dataclass(frozen=True)
class Source:
    """How a sheet was read: its format, text encoding and separator (CSV) or tab (workbook), header row."""

    format: str
    header_row: int = 1
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    sheets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sheet:
    """The member rows of a sheet, by row number: the fields of each, or the ``RowError`` of a bad cell."""

    rows: list[tuple[int, dict[str, Any] | RowError]]
    source: Source


Cells = tuple[int, Sequence[Any]]


def read_sheet(
    data: bytes, *, charset: str | None = None, sheet: str | None = None, region: str, zone: str, max_rows: int
) -> Sheet:
    """Read the member rows of a CSV file or an Excel workbook.

    ``charset``: the encoding the sender declared (else it is detected); ``sheet``: the workbook's
    tab to read (default: the first visible one); ``region``: how to read national phone numbers;
    ``zone``: the time zone of dates without one; ``max_rows``: the most member rows accepted.
    Raises ``SheetError``.
    """
    if not data.strip(b"\x00\t\n\r \xef\xbb\xbf\xfe\xff"):
        raise SheetError(422, "Empty sheet", "the file is empty")
    build = _Builder(region=region, zone=ZoneInfo(zone), max_rows=max_rows)
    if data.startswith(_OLE_MAGIC):
        raise SheetError(
            415,
            "Unsupported spreadsheet",
            "this is an Excel 97-2003 workbook (.xls), or a workbook protected by a password: the service reads "
            'Excel workbooks (.xlsx) and CSV. In Excel, remove any password, then "Save As" "Excel Workbook '
            '(.xlsx)" or "CSV UTF-8", and import that file',
        )
    if data.startswith(_ZIP_MAGIC):
        return _from_workbook(data, sheet, build)
    text, encoding = decode(data, charset)
    return _from_text(text, encoding, build)


def media_type_of(data: bytes) -> str:
    """The media type to send a sheet's bytes with: a workbook's, or CSV (the service checks the bytes anyway)."""
    if data.startswith(_ZIP_MAGIC):
        return XLSX
    return "application/vnd.ms-excel" if data.startswith(_OLE_MAGIC) else "text/csv"


# -- text ----------------------------------------------------------------------------------------


def decode(data: bytes, charset: str | None = None) -> tuple[str, str]:
    """The text of a CSV file and the encoding it was read in.

    A declared ``charset`` is used as given; else a byte-order mark decides (UTF-8, UTF-16), else
    strict UTF-8, else charset-normalizer among ``LEGACY_ENCODINGS``. Raises ``SheetError``.
    """
    if charset:
        return _decode_as(data, charset).removeprefix("\ufeff"), codecs.lookup(charset).name
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return _decode_as(data, encoding).removeprefix("\ufeff"), encoding
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(data, cp_isolation=list(LEGACY_ENCODINGS)).best()
    if best is None:
        raise SheetError(
            422,
            "Unreadable sheet",
            "the file is neither an Excel workbook (.xlsx) nor text in an encoding spreadsheets write (UTF-8, "
            'UTF-16, Windows-1252, Mac Roman): save the sheet as "CSV UTF-8" or as an Excel workbook (.xlsx)',
        )
    return str(best), best.encoding


def _decode_as(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except LookupError:  # unknown, or no text encoding (base64)
        raise SheetError(
            415, "Unknown charset", f"unknown charset {encoding!r}: send UTF-8, or leave the charset out"
        ) from None
    except UnicodeError as exc:
        if isinstance(exc, UnicodeDecodeError) and exc.end >= len(data):
            what = f"ends in the middle of a character (byte {exc.start}), as if cut short"
        elif isinstance(exc, UnicodeDecodeError):
            what = f"has a byte 0x{data[exc.start]:02x} that is no {exc.encoding} (at byte {exc.start})"
        else:
            what = f"cannot be read ({exc})"
        raise SheetError(
            422,
            "Unreadable sheet",
            f"the file is not {encoding} text: it {what}. Save the sheet again as "
            '"CSV UTF-8" or as an Excel workbook (.xlsx)',
        ) from None


def _from_text(text: str, encoding: str, build: _Builder) -> Sheet:
    if not text.strip():
        raise SheetError(422, "Empty sheet", "the file is empty")
    if "\x00" in text:
        raise SheetError(
            422,
            "Unreadable sheet",
            f"the file read as {encoding} holds NUL characters: it is not a CSV sheet. Save the sheet as "
            '"CSV UTF-8" or as an Excel workbook (.xlsx)',
        )
    delimiter = _delimiter(text)
    source = Source(format="csv", encoding=encoding, delimiter=delimiter)
    return build(_csv_records(text, delimiter), source)


def _csv_records(text: str, delimiter: str) -> Iterator[Cells]:
    """The records of a CSV text, numbered as a spreadsheet shows them (one row per record)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    row = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise SheetError(422, "Unreadable sheet", f"row {row + 1} cannot be read as CSV: {exc}") from None
        row += 1
        yield row, cells


def _delimiter(text: str) -> str:
    """The separator that splits the header into the most known column names (``;`` from a Belgian Excel)."""
    scores = {d: _header_score(text, d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: scores[d])
    if scores[best] > 0:
        return best
    try:  # no known column anywhere: split as the file seems to be, to name its columns in the refusal
        return csv.Sniffer().sniff(text[:8192], delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        return ","


def _header_score(text: str, delimiter: str) -> int:
    try:
        found = _find_header(_csv_records(text, delimiter))
    except SheetError:
        return -1
    return sum(1 for cell in found[1] if _column_of(cell)) if found else 0


def _find_header(records: Iterable[Cells]) -> tuple[int, Sequence[Any]] | None:
    """The first row naming a known column, among the first ``HEADER_SEARCH`` non-empty rows."""
    seen = 0
    for number, cells in records:
        if _blank(cells):
            continue
        if any(_column_of(cell) for cell in cells):
            return number, cells
        seen += 1
        if seen >= HEADER_SEARCH:
            return None
    return None


# -- workbooks -----------------------------------------------------------------------------------


def _from_workbook(data: bytes, wanted: str | None, build: _Builder) -> Sheet:
    _check_archive(data)
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl fails on a damaged file with whatever its parsers raise
        raise _damaged(exc) from None
    try:
        tabs = [ws for ws in workbook.worksheets if ws.sheet_state == "visible"] or list(workbook.worksheets)
        worksheet = _tab(workbook, tabs, wanted)
        worksheet.reset_dimensions()  # a workbook's declared size can lie: read the rows that are there
        rows = worksheet.iter_rows(max_col=MAX_COLUMNS, values_only=True)
        source = Source(format="xlsx", sheet=worksheet.title, sheets=tuple(ws.title for ws in tabs))
        return build(_guarded(enumerate(rows, start=1)), source)
    finally:
        workbook.close()


def _check_archive(data: bytes) -> None:
    """Refuse, before anything is unpacked, an archive that is no workbook or unpacks to too much."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
        names = {entry.filename for entry in entries}
        kind = archive.read("mimetype")[:100] if "mimetype" in names and len(entries) < MAX_ZIP_ENTRIES else b""
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
        raise _damaged(exc) from None
    if b"opendocument" in kind:
        raise SheetError(
            415,
            "Unsupported spreadsheet",
            "this is an OpenDocument spreadsheet (.ods): the service reads Excel workbooks (.xlsx) and CSV. In "
            'LibreOffice, choose "File > Save As" and the type "Excel 2007-365 (.xlsx)" or "Text CSV", then '
            "import that file",
        )
    if "[Content_Types].xml" not in names or not any(name.startswith("xl/") for name in names):
        raise SheetError(415, "Unsupported file", "this is a zip archive, not an Excel workbook (.xlsx) nor a CSV")
    unpacked = sum(entry.file_size for entry in entries if entry.filename.endswith((".xml", ".rels")))
    if len(entries) > MAX_ZIP_ENTRIES or unpacked > MAX_UNPACKED_BYTES:
        raise SheetError(
            413,
            "Workbook too large",
            f"the workbook unpacks to {unpacked // 1_000_000} MB in {len(entries)} parts; the service reads at "
            f"most {MAX_UNPACKED_BYTES // 1_000_000} MB: copy the members' columns into a new workbook, or save "
            'the sheet as "CSV UTF-8"',
        )


def _tab(workbook: Any, tabs: list[Any], wanted: str | None) -> Any:
    if wanted is None:
        if not tabs:
            raise SheetError(422, "Empty workbook", "the workbook has no sheet of cells")
        return tabs[0]
    for worksheet in workbook.worksheets:
        if worksheet.title == wanted or _key(worksheet.title) == _key(wanted):
            return worksheet
    names = ", ".join(repr(ws.title) for ws in tabs)
    raise SheetError(422, "No such sheet", f"the workbook has no sheet {wanted!r}; its sheets: {names}", field="sheet")


def _guarded(rows: Iterator[Cells]) -> Iterator[Cells]:
    """The rows of a worksheet, openpyxl's failures on a damaged one turned into ``SheetError``."""
    while True:
        try:
            number, cells = next(rows)
        except StopIteration:
            return
        except Exception as exc:  # openpyxl parses the sheet as it goes: damage shows up here
            raise _damaged(exc) from None
        if number > MAX_SHEET_ROW:
            raise _damaged(ValueError(f"a row past {MAX_SHEET_ROW}"))
        yield number, cells


def _damaged(exc: BaseException) -> SheetError:
    why = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return SheetError(
        422,
        "Unreadable workbook",
        f"the workbook cannot be read ({why}); it may be damaged or cut short. Open it in Excel and save it "
        'again as "Excel Workbook (.xlsx)" or "CSV UTF-8"',
    )


# -- rows to members -----------------------------------------------------------------------------


class _Builder:
    """Turns numbered rows of cells into member rows: finds the header, names columns, reads cells."""

    def __init__(self, *, region: str, zone: ZoneInfo, max_rows: int) -> None:
        self.region, self.zone, self.max_rows = region, zone, max_rows

    def __call__(self, records: Iterable[Cells], source: Source) -> Sheet:
        records = iter(records)
        found = _find_header(records)
        if found is None:
            raise SheetError(
                422,
                "Invalid sheet",
                f"no header row: none of the first {HEADER_SEARCH} rows names a column. " + _expected(),
                field="header",
            )
        header_row, header = found
        columns = _columns(header, header_row)
        rows: list[tuple[int, dict[str, Any] | RowError]] = []
        for number, cells in records:
            if _blank(cells):
                continue
            if len(rows) == self.max_rows:
                raise SheetError(413, "Too many rows", f"more than {self.max_rows} rows; import at most "
                                 f"{self.max_rows} at once: split the sheet")  # fmt: skip
            rows.append((number, self._member(cells, columns, number)))
        return Sheet(rows=rows, source=_with_header(source, header_row))

    def _member(self, cells: Sequence[Any], columns: dict[int, str], number: int) -> dict[str, Any] | RowError:
        fields: dict[str, Any] = {}
        errors: list[dict[str, str]] = []
        for index, value in enumerate(cells):
            name = columns.get(index)
            if name is None:
                if not _blank([value]):
                    where = f"{get_column_letter(index + 1)}{number}"
                    errors.append({"field": "row", "reason": f"cell {where} is in a column without a name: "
                                   "name the column or clear the cell"})  # fmt: skip
                continue
            try:
                read = self._cell(name, value)
            except _CellError as exc:
                errors.append({"field": "name" if name == "first_name" else name, "reason": str(exc)})
                continue
            if read is not None:
                fields[name] = read
        if errors:
            return RowError(errors)
        return _place(_full_name(fields))

    def _cell(self, name: str, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        reader: Callable[[Any], Any] = {
            "phone": self._phone,
            "language": _language,
            "channels": _channels,
            "consent_at": self._consent,
            "whatsapp": _yes_no,
            "lat": _degrees,
            "lon": _degrees,
        }.get(name, _text)
        return reader(value)

    def _phone(self, value: Any) -> str:
        if isinstance(value, date | time):
            raise _CellError("the sheet holds a date here, not a phone number: format the column as Text")
        if isinstance(value, float) and not value.is_integer():
            raise _CellError(f"{value} is no phone number")
        text = str(int(value)) if isinstance(value, int | float) else str(value).strip()
        if _SCIENTIFIC.fullmatch(text):
            raise _CellError(
                f"the sheet wrote this number as {text}, which lost its last digits: format the column as Text, "
                "type the numbers again, and save again"
            )
        return _restore_prefix(text, self.region) if text.isdigit() else text

    def _consent(self, value: Any) -> datetime | str:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=self.zone)
        if isinstance(value, date):
            return datetime.combine(value, time(), tzinfo=self.zone)
        text = _text(value)
        for pattern in _DAY_FIRST:
            for suffix in ("", " %H:%M", " %H:%M:%S"):
                try:
                    return datetime.strptime(text, pattern + suffix).replace(tzinfo=self.zone)
                except ValueError:
                    continue
        return text  # ISO 8601, or refused by the member's validation


def _restore_prefix(digits: str, region: str) -> str:
    """A number a spreadsheet stored as a number, so without its leading 0 or + (``32470123456``)."""
    if digits.startswith("0"):
        return digits
    for candidate in (digits, "+" + digits):
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(candidate, region)):
                return candidate
        except phonenumbers.NumberParseException:
            continue
    return digits


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return " ".join(str(value).split())


def _language(value: Any) -> str:
    text = _text(value)
    key = _key(text)
    return _LANGUAGE.get(key) or _LANGUAGE.get(key.split(" ")[0], text)  # fr-BE, nl_BE: the language


def _channels(value: Any) -> list[str]:
    names = [part for part in re.split(r"[;|,/+\n]+", _text(value)) if part.strip()]
    return [_CHANNEL.get(_key(part), part.strip().lower()) for part in names]


#: How a sheet says yes or no, in the four languages (a cell left empty is no).
_YES_NO = _aliases(
    {
        "yes": ("y", "x", "1", "true", "oui", "o", "vrai", "ja", "j", "waar", "wahr"),
        "no": ("n", "0", "false", "non", "faux", "nee", "onwaar", "nein", "falsch"),
    }
)


def _yes_no(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(int(value)) if isinstance(value, int | float) and float(value).is_integer() else _text(value)
    answer = _YES_NO.get(_key(text))
    if answer is None:
        raise _CellError(f"{text!r} is neither yes nor no (oui/non, ja/nee, ja/nein)")
    return answer == "yes"


def _full_name(fields: dict[str, Any]) -> dict[str, Any]:
    first = fields.pop("first_name", None)
    if first:
        fields["name"] = f"{first} {fields['name']}" if fields.get("name") else first
    return fields


def _degrees(value: Any) -> float | str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = _text(value).replace(",", ".")  # 50,8503: a decimal comma
    try:
        return float(text)
    except ValueError:
        raise _CellError(f"{text!r} is not a number of degrees (50.8503)") from None


_ADDRESS = ("street", "number", "postcode", "commune")


def _place(fields: dict[str, Any]) -> dict[str, Any]:
    """The address's columns as the member's ``address``, ``lat`` and ``lon`` as their ``coordinates``."""
    if any(name in fields for name in _ADDRESS):
        fields["address"] = {name: fields.pop(name) for name in _ADDRESS if name in fields}
    if "lat" in fields or "lon" in fields:
        fields["coordinates"] = {name: fields.pop(name) for name in ("lat", "lon") if name in fields}
    return fields


def _column_of(cell: Any) -> str | None:
    return _COLUMN.get(_key(cell)) if isinstance(cell, str) else None


def _columns(header: Sequence[Any], row: int) -> dict[int, str]:
    """Column index → field name; raises ``SheetError`` naming unknown or repeated columns."""
    columns: dict[int, str] = {}
    unknown: list[str] = []
    for index, cell in enumerate(header):
        if _blank([cell]):
            continue
        letter = get_column_letter(index + 1)
        name = _column_of(cell)
        if name is None:
            unknown.append(f"{_text(cell)} ({letter}{row})")
        elif name in columns.values():
            first = next(i for i, n in columns.items() if n == name)
            raise SheetError(
                422,
                "Invalid sheet",
                f"two columns are the member's {name}: {get_column_letter(first + 1)} and {letter} "
                f"(row {row}); keep one",
                field="header",
            )
        else:
            columns[index] = name
    if unknown:
        raise SheetError(422, "Invalid sheet", f"unknown column(s) {', '.join(unknown)}. {_expected()}", field="header")
    return columns


def _expected() -> str:
    columns = ", ".join(c for c in COLUMNS if c != "first_name")
    return (
        f"Expected some of: {columns} (or first_name), in English, French, Dutch or German "
        '(e.g. "Nom;Prénom;Téléphone;E-mail;Langue", "Naam;Telefoon;E-mail;Taal"); rename or delete the others'
    )


def _blank(cells: Sequence[Any]) -> bool:
    if not any(cells):  # the common case, in C: the empty rows a workbook pads its gaps with
        return True
    return all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in cells)


def _with_header(source: Source, header_row: int) -> Source:
    return dataclasses.replace(source, header_row=header_row)
