"""ANSI/NIST-ITL transactions: finger images to catalog rows, and transactions from images.

Read with IDEMIA's ``nistitl`` (the optional extra ``fpload[nist]``). The mapping (also in the
README's "Biometric records"):

=====================================  ===============================================================
record field                           catalog column
=====================================  ===============================================================
``--subject-field`` (default 1.009)    ``subject_id`` (a Type-1 or Type-2 field, e.g. 2.015 for an SID)
14.013 / Type-4 FGP                    ``finger``: 1–10 kept; 0 (unknown) kept as 0; 11/12 (plain
                                       thumbs) → 1/6; 13–38 and 40–50 (slaps, palms, extra digits,
                                       tips) skipped and counted; anything else refused
14.003 / Type-4 IMP                    ``impression`` (the ANSI/NIST impression code)
14.008 SLC + 14.009 THPS               ``ppi`` (SLC 1: pixels per inch, 2: per cm × 2.54); Type-4:
                                       ISR 0 → 500, 1 → 1.011 NSR (pixels per mm × 25.4)
14.024 FQM quality value               ``quality`` (0–100, e.g. NFIQ 2; 254/255 → empty)
14.904 MMS make + model, else 14.903   ``sensor`` ("unknown" when neither)
DUI
14.005 FCD                             ``captured_at``
14.999 DATA / Type-4 image             the image: ``sample_id`` hashes these bytes; ``width``,
                                       ``height``, ``format`` from decoding them (checked against
                                       14.006 HLL, 14.007 VLL and 14.011 CGA)
the rest                               ``extra.record``: type, idc, fgp, cga, src, nfiq (14.022 NQM),
                                       dmm, tot, tcn, ori, dat, vertical ppi when it differs; fields
                                       named by ``--keep-field`` under ``extra.fields``
=====================================  ===============================================================

Other Type-2 fields are not copied (they often hold names and dates of birth). Record types that
hold no single-finger image (Type-2, 9, 10, 13 latents, 15 palms, ...) are skipped and counted; a
record type the standard does not define is refused (its length cannot be trusted).
"""

from __future__ import annotations

import re
import struct
import threading
import warnings
from datetime import datetime
from typing import Any

from fpload.errors import RecordError, UsageError

#: ANSI/NIST-ITL 1-2011 finger position codes of one finger that map to a catalog finger
FINGER_OF_FGP = {**{c: c for c in range(0, 11)}, 11: 1, 12: 6}
#: valid codes that are not one finger (slaps, extra digits, unknown friction ridge, palms, tips): skipped
SKIPPED_FGP = frozenset(range(13, 39)) | frozenset(range(40, 51))
#: Type-14 compression (14.011 CGA) → catalog format; NONE (uncompressed) is not read yet
CGA_FORMAT = {"WSQ20": "wsq", "WSQ": "wsq", "JPEGB": "jpeg", "JPEGL": "jpeg", "JP2": "jp2", "JP2L": "jp2",
              "PNG": "png"}
FORMAT_CGA = {"wsq": "WSQ20", "jpeg": "JPEGB", "jp2": "JP2L", "png": "PNG"}
_TAG_LEN = re.compile(rb"(\d+)\.(\d+):(\d+)")
_FIELD_NAME = re.compile(r"([0-9]{1,2})\.([0-9]{1,3})", re.ASCII)
_NISTITL_LOCK = threading.Lock()
_MAX_RECORDS = 10_000


def _nistitl(where: str):
    try:
        import nistitl
    except ImportError:
        raise RecordError(f"{where}: ANSI/NIST-ITL transactions need nistitl (pip install 'fpload[nist]')") from None
    return nistitl


def parse_field_name(text: str, option: str, types: tuple[int, ...] | None = None) -> tuple[int, int]:
    """``(record type, field number)`` of a field name such as ``1.009`` or ``2.015``.

    >>> parse_field_name("2.015", "--subject-field", types=(1, 2))
    (2, 15)
    """
    m = _FIELD_NAME.fullmatch(text.strip())
    if not m or (types is not None and int(m[1]) not in types) or int(m[2]) < 1:
        allowed = f"a field of record type {' or '.join(map(str, types))}" if types else "a field"
        raise UsageError(f"{option} {text!r} is not {allowed} written as TYPE.FIELD (e.g. 1.009 or 2.015)")
    return int(m[1]), int(m[2])


def finger_of(fgp: Any, where: str) -> int | None:
    """The catalog finger of an FGP code; None for a valid code that is not one finger (skip it);
    :class:`RecordError` for a code out of range."""
    try:
        code = int(str(fgp).strip())
    except ValueError:
        raise RecordError(f"{where}: finger position {fgp!r} is not a number (FGP codes 0–50)") from None
    if code in FINGER_OF_FGP:
        return FINGER_OF_FGP[code]
    if code in SKIPPED_FGP:
        return None
    raise RecordError(f"{where}: finger position {code} is out of range (ANSI/NIST-ITL FGP codes: 0–12 one "
                      "finger, 13–38 and 40–50 slaps, palms and tips)")


def _walk_lengths(data: bytes, file: str) -> None:
    """Refuse what ``nistitl`` would loop on: a binary record of length 0, or too many records."""
    offset, n = 0, 0
    while offset + 4 < len(data):
        m = _TAG_LEN.match(data, offset)
        if m is not None:
            if len(m[3]) > 12:
                raise RecordError(f"{file}: record {n}: length field {m[3][:16]!r}… is not a length")
            length = int(m[3])
        else:
            length = int.from_bytes(data[offset:offset + 4], "big")
        if length < 5:
            raise RecordError(f"{file}: record {n} at byte {offset}: length {length} is too small (wrong lengths)")
        if offset + length > len(data):
            raise RecordError(f"{file}: truncated transaction: record {n} at byte {offset} declares {length} bytes, "
                              f"{len(data) - offset} are left")
        if m is not None and data[offset + length - 1] != 0x1C:
            raise RecordError(f"{file}: record {n} (Type-{int(m[1])}) at byte {offset}: its length field says "
                              f"{length} bytes but the record does not end there (wrong lengths)")
        offset += length
        n += 1
        if n > _MAX_RECORDS:
            raise RecordError(f"{file}: more than {_MAX_RECORDS} records in one transaction")


def parse_transaction(data: bytes, file: str):
    """A parsed ``nistitl.Message``; :class:`RecordError` naming the file on truncation, wrong
    lengths, an unknown record type or any other malformation."""
    nistitl = _nistitl(file)
    if not data.startswith(b"1.001:"):
        raise RecordError(f"{file}: not an ANSI/NIST-ITL transaction (it must start with the Type-1 field 1.001)")
    _walk_lengths(data, file)
    msg = nistitl.Message()
    try:
        with _NISTITL_LOCK, warnings.catch_warnings():  # it warns on deprecated types 3, 5, 6
            warnings.simplefilter("ignore")
            msg.parse(data)
    except nistitl.NistException as err:
        kind = {"NIST_TOO_SHORT": "truncated transaction", "NIST_TOO_LONG": "wrong record lengths (extra bytes)",
                "BAD_CONTENT": "wrong record lengths or record count (1.003 CNT)"}.get(err.error.name, "malformed record")
        raise RecordError(f"{file}: {kind}: {err}") from None
    except KeyError as err:
        raise RecordError(f"{file}: unknown record type {err.args[0]!r} (not defined by ANSI/NIST-ITL); the "
                          "transaction is refused") from None
    except Exception as err:  # noqa: BLE001 - nistitl raises many kinds on junk
        raise RecordError(f"{file}: malformed transaction ({type(err).__name__}: {str(err)[:120]})") from None
    return msg


def _value(rec, tag: int) -> Any:
    f = rec[tag]
    return None if f is None else f.value


def _text(rec, tag: int) -> str | None:
    v = _value(rec, tag)
    if isinstance(v, list):
        v = v[0] if v else None
        if isinstance(v, list):
            v = v[0] if v else None
    if v is None:
        return None
    v = str(v).strip()
    return v or None


def _items(rec, tag: int) -> list[list[str]]:
    v = _value(rec, tag)
    if v is None or v == "":
        return []
    if not isinstance(v, list):
        return [[str(v)]]
    return [[str(i) for i in s] if isinstance(s, list) else [str(s)] for s in v]


def _int(rec, tag: int, name: str, where: str, required: bool = True) -> int | None:
    t = _text(rec, tag)
    if t is None:
        if required:
            raise RecordError(f"{where}: field {rec.type}.{tag:03d} {name} is missing")
        return None
    try:
        return int(t)
    except ValueError:
        raise RecordError(f"{where}: field {rec.type}.{tag:03d} {name} = {t[:40]!r} is not a number") from None


def _subject(msg, field: tuple[int, int], file: str) -> str:
    rtype, tag = field
    values = {_text(r, tag) for r in msg.iter(rtype)} - {None}
    if not values:
        raise RecordError(f"{file}: the subject field {rtype}.{tag:03d} is missing or empty (choose another "
                          "with --subject-field)")
    if len(values) > 1:
        raise RecordError(f"{file}: the Type-{rtype} records disagree on the subject field {rtype}.{tag:03d}")
    return values.pop()


def _type14(rec, where: str) -> dict[str, Any]:
    slc = _int(rec, 8, "SLC", where, required=False)
    thps = _int(rec, 9, "THPS", where, required=False)
    if slc not in (1, 2) or not thps:
        raise RecordError(f"{where}: resolution missing (14.008 SLC must be 1 or 2 and 14.009 THPS set; "
                          f"got SLC={slc}, THPS={thps})")
    ppi = thps if slc == 1 else round(thps * 2.54)
    tvps = _int(rec, 10, "TVPS", where, required=False)
    cga = (_text(rec, 11) or "").upper()
    if cga not in CGA_FORMAT:
        raise RecordError(f"{where}: compression 14.011 CGA = {cga or 'missing'!r} is not read (WSQ20, JPEGB, "
                          "JPEGL, JP2, JP2L or PNG; uncompressed NONE is not supported yet)")
    bpx = _int(rec, 12, "BPX", where, required=False)
    if bpx not in (None, 8):
        raise RecordError(f"{where}: 14.012 BPX = {bpx} bits per pixel (fpload reads 8-bit grey images)")
    fgp_items = _items(rec, 13)
    if not fgp_items:
        raise RecordError(f"{where}: finger position 14.013 FGP is missing")
    fgp = fgp_items[0][0]
    nqm = {i[0]: i[1] for i in _items(rec, 22) if len(i) >= 2}
    fqm = {i[0]: i[1] for i in _items(rec, 24) if len(i) >= 2}
    quality = None
    try:
        q = int(fqm.get(fgp, "")) if fgp in fqm else None
        nfiq = int(nqm[fgp]) if fgp in nqm else None
    except ValueError:
        raise RecordError(f"{where}: quality 14.024 FQM / 14.022 NQM is not a number") from None
    if q is not None and 0 <= q <= 100:
        quality = float(q)
    mms = _items(rec, 904)
    make_model = " ".join(x for x in (mms[0][:2] if mms else []) if x.strip())
    sensor = make_model or _text(rec, 903) or "unknown"
    fcd = _text(rec, 5)
    captured = None
    if fcd is not None:
        try:
            captured = datetime.strptime(fcd, "%Y%m%d")
        except ValueError:
            raise RecordError(f"{where}: capture date 14.005 FCD = {fcd[:20]!r} is not a date YYYYMMDD") from None
    data = _value(rec, 999)
    if not isinstance(data, bytes) or not data:
        raise RecordError(f"{where}: no image data (14.999 DATA missing or empty)")
    extra = {"cga": cga, "src": _text(rec, 4), "nfiq": nfiq if nfiq is not None and 1 <= nfiq <= 5 else None,
             "dmm": _text(rec, 30)}
    if tvps and tvps != thps:
        extra["ppi_vertical"] = tvps if slc == 1 else round(tvps * 2.54)
    return {"fgp": fgp, "impression": _int(rec, 3, "IMP", where), "ppi": ppi, "quality": quality,
            "sensor": sensor, "captured_at": captured, "_image": data,
            "_expect": (CGA_FORMAT[cga], _int(rec, 6, "HLL", where), _int(rec, 7, "VLL", where)), "extra": extra}


def _type4(rec, msg, where: str) -> dict[str, Any]:
    v = rec.value
    if len(v) < 13:
        raise RecordError(f"{where}: Type-4 record of {len(v) + 5} bytes is shorter than its 18-byte header")
    imp, fgp, isr, hll, vll, gca = v[0], v[1], v[7], int.from_bytes(v[8:10], "big"), int.from_bytes(v[10:12], "big"), v[12]
    if isr == 0:
        ppi = 500
    else:
        nsr = _text(msg[0], 11)
        try:
            ppi = round(float(nsr) * 25.4) if nsr else 0
        except ValueError:
            ppi = 0
        if ppi <= 0:
            raise RecordError(f"{where}: resolution missing (ISR 1 needs the native scanning resolution 1.011 NSR)")
    if gca != 1:
        raise RecordError(f"{where}: Type-4 compression GCA {gca} is not read (1: WSQ; uncompressed 0 is not "
                          "supported yet)")
    return {"fgp": fgp, "impression": imp, "ppi": ppi, "quality": None, "sensor": "unknown", "captured_at": None,
            "_image": bytes(v[13:]), "_expect": ("wsq", hll, vll), "extra": {"gca": gca}}


def an2_rows(data: bytes, file: str, subject_field: tuple[int, int], keep: tuple[tuple[int, int], ...] = (),
             ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Rows (with ``_image`` bytes to probe) of every single-finger image in one transaction; and the
    count of skipped records per reason."""
    from fpload.catalog._records import record_uri

    msg = parse_transaction(data, file)
    subject = _subject(msg, subject_field, file)
    head = msg[0]
    common = {k: _text(head, t) for k, t in (("tot", 4), ("dat", 5), ("ori", 8), ("tcn", 9))}
    rows, skipped = [], {}
    for index, rec in enumerate(msg):
        if rec.type not in (4, 14):
            if rec.type not in (1, 2):
                key = f"record type {rec.type}"
                skipped[key] = skipped.get(key, 0) + 1
            continue
        where = f"{file}: record {index} (Type-{rec.type})"
        try:
            got = _type14(rec, where) if rec.type == 14 else _type4(rec, msg, where)
        except RecordError:
            raise
        except (ValueError, TypeError, IndexError, KeyError, AttributeError, struct.error) as err:
            raise RecordError(f"{where}: malformed ({type(err).__name__}: {str(err)[:120]})") from None
        finger = finger_of(got["fgp"], where)
        if finger is None:
            key = f"finger position {got['fgp']}"
            skipped[key] = skipped.get(key, 0) + 1
            continue
        if not 1 <= got["ppi"] <= 100000:
            raise RecordError(f"{where}: resolution {got['ppi']} ppi is out of range (1–100000)")
        if got["impression"] < 0:
            raise RecordError(f"{where}: impression type {got['impression']} is out of range")
        idc = rec.IDC
        record = {"type": rec.type, "idc": int(idc) if str(idc).isdigit() else str(idc), "fgp": int(str(got["fgp"])),
                  **{k: v for k, v in {**common, **got["extra"]}.items() if v is not None}}
        fields = {f"{t}.{n:03d}": _value(r, n) for t, n in keep for r in list(msg.iter(t))[:1]
                  if _value(r, n) not in (None, "") and not isinstance(_value(r, n), bytes)}
        rows.append({"_image": got["_image"], "_expect": got["_expect"], "uri": record_uri(file, f"type{rec.type}", index),
                     "subject_id": subject, "finger": finger, "impression": got["impression"], "sensor": got["sensor"],
                     "ppi": got["ppi"], "quality": got["quality"], "captured_at": got["captured_at"],
                     "extra": {"record": record, **({"fields": fields} if fields else {})}})
    return rows, skipped


def image_of(data: bytes, file: str, index: int) -> bytes:
    """The image bytes of record ``index`` (a Type-4 or Type-14) of a transaction."""
    msg = parse_transaction(data, file)
    if index >= len(msg) or msg[index].type not in (4, 14):
        raise RecordError(f"{file}: record {index} is not a Type-4 or Type-14 finger image")
    rec = msg[index]
    if rec.type == 4:
        return bytes(rec.value[13:])
    img = _value(rec, 999)
    if not isinstance(img, bytes):
        raise RecordError(f"{file}: record {index} holds no image data")
    return img


def build_transaction(subject_id: str, images: list[dict[str, Any]], *, tot: str = "FPLOAD",
                      ori: str = "FPLOAD", date: str = "20000101") -> bytes:
    """An ANSI/NIST-ITL transaction (Type-1, one Type-2, one Type-14 per image) of one subject.

    ``images``: dicts with ``image`` (bytes), ``format`` (wsq/png/jp2/jpeg), ``width``, ``height``,
    ``finger``, ``impression``, ``ppi``, and optionally ``quality`` (0–100, into 14.024 FQM),
    ``sensor`` (14.904 MMS model), ``captured_at`` (a datetime, 14.005 FCD). The subject is written to
    1.009 TCN and 2.015. ``date`` (1.005 DAT) is fixed so equal input gives equal bytes.
    """
    nistitl = _nistitl(f"transaction of subject {subject_id}")
    msg = nistitl.Message()
    msg.TOT = tot
    head = msg[0]
    head.DAT = date
    head.ORI = ori
    head.TCN = subject_id
    r2 = nistitl.AsciiRecord(2)
    r2.IDC = 0
    r2 += nistitl.Field(2, 15, subject_id)
    msg += r2
    for n, im in enumerate(images, 1):
        r = nistitl.AsciiRecord(14)
        r.IDC = n
        r += nistitl.Field(14, 3, str(im["impression"]))
        r += nistitl.Field(14, 4, ori)
        cap = im.get("captured_at")
        if isinstance(cap, datetime):
            r += nistitl.Field(14, 5, cap.strftime("%Y%m%d"))
        r += nistitl.Field(14, 6, str(im["width"]))
        r += nistitl.Field(14, 7, str(im["height"]))
        r += nistitl.Field(14, 8, "1")
        r += nistitl.Field(14, 9, str(im["ppi"]))
        r += nistitl.Field(14, 10, str(im["ppi"]))
        r += nistitl.Field(14, 11, FORMAT_CGA[im["format"]])
        r += nistitl.Field(14, 12, "8")
        r += nistitl.Field(14, 13, str(im["finger"]))
        q = im.get("quality")
        if q is not None:
            r += nistitl.Field(14, 24, [[str(im["finger"]), str(int(round(q))), "FFFF", "0"]])
        if im.get("sensor"):
            r += nistitl.Field(14, 904, [["", str(im["sensor"]), ""]])
        r += nistitl.BinaryField(14, 999, im["image"])
        msg += r
    return msg.NIST
