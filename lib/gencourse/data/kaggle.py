"""Kaggle's "I'm Something of a Painter Myself" (gan-getting-started), read without TensorFlow.

root/monet_tfrec/*.tfrec and root/photo_tfrec/*.tfrec: each record a
tf.train.Example with the bytes features image_name, image (JPEG) and target;
a file's record count is in its name (monet00-60.tfrec holds 60); or the same
images as root/monet_jpg/ and root/photo_jpg/. A record is length (uint64 LE),
masked crc32c of the length, the data, masked crc32c of the data; the data is
an Example protobuf, parsed by the few lines below. Bad input raises DataError
naming the file and the record.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np

from .domains import Domain, decode_image, image_folder
from .mnist import DataError

KAGGLE_FEATURES = ("image_name", "image", "target")


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):   # reflected Castagnoli polynomial
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum of TFRecord files."""
    crc, table = 0xFFFFFFFF, _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked checksum: rotate right by 15 bits, add 0xa282ead8."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord_index(path) -> list[tuple[int, int]]:
    """(offset of the data, length) of every record of a file; checks the length checksums."""
    path = Path(path)
    index, total = [], path.stat().st_size
    with open(path, "rb") as f:
        offset = 0
        while offset < total:
            header = f.read(12)
            if len(header) < 12:
                raise DataError(f"{path}: record {len(index)} at byte {offset}: truncated header")
            length, crc = struct.unpack("<QI", header)
            if masked_crc32c(header[:8]) != crc:
                raise DataError(f"{path}: record {len(index)} at byte {offset}: the length's checksum "
                                "does not match (not a TFRecord file, or a corrupt one)")
            end = offset + 12 + length + 4
            if end > total:
                raise DataError(f"{path}: record {len(index)} at byte {offset}: {length} bytes of data "
                                f"promised, the file ends first (truncated)")
            index.append((offset + 12, length))
            offset = end
            f.seek(offset)
    return index


def read_record(path, offset: int, length: int, number: int = 0) -> bytes:
    """The data of one record, its checksum verified."""
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(length)
        crc_bytes = f.read(4)
    if len(data) < length or len(crc_bytes) < 4:
        raise DataError(f"{path}: record {number}: truncated data")
    if masked_crc32c(data) != struct.unpack("<I", crc_bytes)[0]:
        raise DataError(f"{path}: record {number}: the data's checksum does not match (corrupt file)")
    return data


def read_tfrecord(path) -> list[bytes]:
    """Every record of a TFRecord file (uncompressed), checksums verified."""
    return [read_record(path, off, n, i) for i, (off, n) in enumerate(tfrecord_index(path))]


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated or overlong varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def _fields(buf: bytes):
    """(field number, wire type, value) of a protobuf message; LEN values as bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated message")
        yield number, wire, value


def _feature(buf: bytes) -> tuple[str, list]:
    """A tf.train.Feature: ("bytes" | "float" | "int64", values)."""
    for number, _, payload in _fields(buf):
        if number == 1:      # BytesList { repeated bytes value = 1; }
            return "bytes", [v for n, _, v in _fields(payload) if n == 1]
        if number == 2:      # FloatList { repeated float value = 1 [packed]; }
            values = []
            for n, wire, v in _fields(payload):
                if n == 1:
                    values += list(struct.unpack(f"<{len(v) // 4}f", v)) if wire == 2 else \
                        [struct.unpack("<f", v)[0]]
            return "float", values
        if number == 3:      # Int64List { repeated int64 value = 1 [packed]; }
            values = []
            for n, wire, v in _fields(payload):
                if n == 1:
                    if wire == 2:
                        pos, raw = 0, []
                        while pos < len(v):
                            x, pos = _varint(v, pos)
                            raw.append(x)
                    else:
                        raw = [v]
                    values += [x - (1 << 64) if x >= 1 << 63 else x for x in raw]
            return "int64", values
    return "bytes", []       # an empty Feature


def parse_example(data: bytes) -> dict[str, tuple[str, list]]:
    """A serialized tf.train.Example -> {feature name: (kind, values)}.

    Example { Features features = 1; }, Features { map<string, Feature> feature = 1; }.
    Raises ValueError on malformed bytes.
    """
    features = {}
    for number, _, payload in _fields(data):
        if number != 1:
            continue
        for n, _, entry in _fields(payload):
            if n != 1:
                continue
            key, value = "", b""
            for m, _, v in _fields(entry):
                if m == 1:
                    key = v.decode("utf-8")
                elif m == 2:
                    value = v
            features[key] = _feature(value)
    return features


def record_count_from_name(path) -> int | None:
    """The count Kaggle puts in the file name: monet00-60.tfrec -> 60 (None without one)."""
    match = re.search(r"-(\d+)\.tfrec(ord)?$", Path(path).name)
    return int(match.group(1)) if match else None


class TFRecordDomain(Domain):
    """Images stored as JPEG bytes in tf.train.Example records (Kaggle's Monet layout).

    Its length comes from the file names when they carry counts; the files are
    indexed on first use, and a count that disagrees with the file is an error.
    """

    def __init__(self, files, name: str | None = None, image_key: str = "image",
                 features=KAGGLE_FEATURES, channels: int = 3):
        self.files = [Path(f) for f in files]
        self.name = name or (str(self.files[0].parent) if self.files else "tfrecords")
        self.image_key, self.features, self.channels = image_key, tuple(features), channels
        counts = [record_count_from_name(f) for f in self.files]
        self._length = sum(counts) if None not in counts else None
        self._index: list[tuple[Path, int, int, int]] | None = None
        if not self._length:      # no counts in the names, or they promise nothing
            self._build_index()

    def _build_index(self) -> None:
        index = []
        for path in self.files:
            records = tfrecord_index(path)
            named = record_count_from_name(path)
            if named is not None and named != len(records):
                raise DataError(f"{path}: its name promises {named} records, the file holds {len(records)}")
            index += [(path, off, n, i) for i, (off, n) in enumerate(records)]
        if not index:
            raise DataError(f"{self.name}: the TFRecord files hold no records (an empty domain)")
        self._index, self._length = index, len(index)

    def __len__(self) -> int:
        return self._length

    def example(self, i: int) -> dict[str, bytes]:
        """The expected features of record i as bytes, checked."""
        if self._index is None:
            self._build_index()
        path, offset, length, number = self._index[i]
        where = f"{path}: record {number}"
        try:
            features = parse_example(read_record(path, offset, length, number))
        except ValueError as e:
            raise DataError(f"{where}: not a tf.train.Example ({e})") from e
        missing = [k for k in self.features if k not in features]
        if missing:
            raise DataError(f"{where}: no feature {', '.join(map(repr, missing))} "
                            f"(has {sorted(features) or 'none'}; expected {list(self.features)})")
        out = {}
        for key in self.features:
            kind, values = features[key]
            if kind != "bytes" or len(values) != 1:
                raise DataError(f"{where}: feature {key!r} is {len(values)} {kind} value(s), "
                                "expected one string")
            out[key] = values[0]
        return out

    def image(self, i: int) -> np.ndarray:
        ex = self.example(i)
        path, _, _, number = self._index[i]
        name = ex.get("image_name", b"").decode("utf-8", "replace")
        source = f"{path}: record {number}" + (f" ({name})" if name else "")
        return decode_image(ex[self.image_key], source, self.channels)


def tfrecord_folder(folder, **kwargs) -> TFRecordDomain:
    """Every *.tfrec / *.tfrecord file in `folder`, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if p.suffix in (".tfrec", ".tfrecord"))
    if not files:
        raise DataError(f"{folder}: no .tfrec files in the folder (an empty domain)")
    return TFRecordDomain(files, str(folder), **kwargs)


def kaggle_monet(root, fmt: str = "auto") -> tuple[Domain, Domain]:
    """(monet, photo) from Kaggle's gan-getting-started: *_tfrec folders, or *_jpg with fmt="jpg".

    fmt "auto" takes the TFRecords when monet_tfrec/ is there, the JPEGs otherwise.
    """
    root = Path(root)
    if fmt == "auto":
        fmt = "tfrec" if (root / "monet_tfrec").is_dir() or not (root / "monet_jpg").is_dir() else "jpg"
    if fmt not in ("tfrec", "jpg"):
        raise ValueError(f"fmt must be 'auto', 'tfrec' or 'jpg', got {fmt!r}")
    folders = [root / f"{d}_{fmt}" for d in ("monet", "photo")]
    for folder in folders:
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder (Kaggle's layout: monet_tfrec/ and photo_tfrec/, "
                            "or monet_jpg/ and photo_jpg/)")
    read = tfrecord_folder if fmt == "tfrec" else image_folder
    return read(folders[0]), read(folders[1])
