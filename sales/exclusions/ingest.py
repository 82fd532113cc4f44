"""Reading an exclusion file as it arrives: each line turned at once into a 32-byte key, the
raw text dropped with the line. Pure CPU (no database, no I/O): the endpoint feeds it the
request's body chunk by chunk and stores the key chunks it hands back.

Normalisation: a French number in the usual forms (0XXXXXXXXX, 0X XX XX XX XX, +33 X...,
0033 X...) is validated against the phonenumbers metadata of FR directly (the same national
patterns is_valid_number applies, about 20x faster per line); a national number that is not
metropolitan is read as an overseas department's (0692... is Reunion's +262 692...); any other
form goes through phonenumbers.parse with the file's region. Either way the key is the HMAC of
the E.164 text, the opt-outs' (datasets/vault.hmac_numbers)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from datasets.vault import NATIONAL_REGIONS, hmac_numbers, normalise_e164
from sales.exclusions.exceptions import ExclusionFileTooLarge

KEY = 32  # bytes of a key (HMAC-SHA256 or SHA-256)
CHUNK = 65_536  # keys per stored chunk (2 MB)
_DELETE = b" .-()\t\"'"
_HEX = re.compile(rb"[0-9a-fA-F]{64}")
FR_TYPES = (
    "fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost",
    "personal_number", "voip", "pager", "uan", "voicemail",
)  # fmt: skip


@cache
def _fr_valid() -> re.Pattern[bytes]:
    """A national significant number valid in France, from the library's own metadata."""
    import phonenumbers

    md = phonenumbers.PhoneMetadata.metadata_for_region("FR")
    assert md is not None
    types = [d.national_number_pattern for t in FR_TYPES if (d := getattr(md, t)) is not None]
    general = md.general_desc.national_number_pattern if md.general_desc else r"\d+"
    return re.compile(f"(?=(?:{general})$)(?:{'|'.join(types)})".encode())


def e164(field: bytes, region: str) -> bytes | None:
    """The E.164 form of a number as a customer may write it, None when it is not valid."""
    bare = field.translate(None, _DELETE)
    if bare.startswith(b"+33"):
        nsn = bare[3:]
    elif bare.startswith(b"0033"):
        nsn = bare[4:]
    elif region == "FR" and bare.startswith(b"0"):
        nsn = bare[1:]
    else:
        nsn = b""
    # phonenumbers' verdict on these (see the tests); "00..." is an international prefix.
    if len(nsn) == 9 and nsn.isdigit() and not nsn.startswith(b"0"):
        if _fr_valid().fullmatch(nsn):
            return b"+33" + nsn
        if bare.startswith(b"0") and region == "FR":  # 0692..., 0690...: an overseas number
            return _parsed(bare, NATIONAL_REGIONS[1:])
        return None
    return _parsed(field, (region,))


def _parsed(field: bytes, regions: tuple[str, ...]) -> bytes | None:
    """phonenumbers' E.164 of the field read in the first of `regions` where it is valid."""
    text = field.decode("utf-8", "replace")
    for region in regions:
        try:
            return normalise_e164(text, region).encode()
        except Exception:  # noqa: BLE001, S112 (any parse failure: the next region, or a rejected line)
            continue
    return None


_SEP = re.compile(rb"[,;\t]")


def first_field(line: bytes) -> bytes:
    """A CSV line's first field (`,`, `;` or tab separated, quotes dropped later)."""
    return _SEP.split(line, 1)[0].strip() if _SEP.search(line) else line


@dataclass
class Ingest:
    """Lines -> keys. `form` "numbers": HMACs under `hmac_key`; "sha256": the customer's
    hex digests as given. Blank lines are not counted; anything else unusable is rejected."""

    form: str
    region: str
    hmac_key: bytes
    max_lines: int
    lines: int = 0
    rejected: int = 0
    _tail: bytes = b""
    _pending: list[bytes] = field(default_factory=list)
    _prefixes: list[np.ndarray] = field(default_factory=list)

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Take a piece of the body; the chunks of keys now complete, to be stored."""
        parts = (self._tail + data).split(b"\n")
        self._tail = parts.pop()
        if len(self._tail) > 4096:  # no number is this long: the file has no line breaks
            self._tail = b"x"
        self._take(parts)
        return self._drain(final=False)

    def close(self) -> list[tuple[int, bytes]]:
        """The end of the body: the last chunk."""
        self._take([self._tail])
        self._tail = b""
        return self._drain(final=True)

    @property
    def accepted(self) -> int:
        """Distinct keys kept (8-byte prefixes: a collision among 5 million is ~1e-6)."""
        if not self._prefixes:
            return 0
        prefixes = np.concatenate(self._prefixes)
        self._prefixes = [prefixes]
        prefixes.sort()  # in place: no third copy
        return 1 + int(np.count_nonzero(prefixes[1:] != prefixes[:-1]))

    def _take(self, raw: list[bytes]) -> None:
        hashed, region = self.form == "sha256", self.region
        if not self.lines and raw:
            raw[0] = raw[0].removeprefix(b"\xef\xbb\xbf")  # a byte order mark
        pending, rejected, lines = self._pending, 0, 0
        for line in raw:
            line = line.strip(b" \r\t")
            if not line:
                continue
            lines += 1
            value = first_field(line).strip(b"\"' ")
            if hashed:
                key = bytes.fromhex(value.decode()) if _HEX.fullmatch(value) else None
            else:
                key = e164(value, region)
            if key is None:
                rejected += 1
            else:
                pending.append(key)
        self.lines += lines
        self.rejected += rejected
        if self.lines > self.max_lines:
            raise ExclusionFileTooLarge(
                f"an exclusion file holds at most {self.max_lines:,} lines: split it"
            )

    def _drain(self, final: bool) -> list[tuple[int, bytes]]:
        """(sequence number, keys) of each chunk now complete."""
        out = []
        while len(self._pending) >= CHUNK or (final and self._pending):
            batch, self._pending = self._pending[:CHUNK], self._pending[CHUNK:]
            if self.form != "sha256":
                batch = hmac_numbers(self.hmac_key, batch)
            keys = np.unique(np.frombuffer(b"".join(batch), dtype=f"S{KEY}"))
            self._prefixes.append(np.frombuffer(keys.tobytes(), dtype=np.uint64)[::4].copy())
            out.append((len(self._prefixes) - 1, keys.tobytes()))
        return out
