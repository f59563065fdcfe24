"""Unpaired image domains: the formats on small files the tests write, the sampler, the digits default."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from gencourse.data.domains import ArrayDomain, UnpairedDomains, cyclegan_folders, digits_domains, image_folder, \
    preprocess, resize
from gencourse.data.kaggle import crc32c, kaggle_monet, parse_example, read_tfrecord, record_count_from_name, \
    tfrecord_folder
from gencourse.data.mnist import DataError

# ---------------------------------------------------------------- a TFRecord writer of the tests' own


def crc32c_bitwise(data: bytes) -> int:
    """CRC-32C one bit at a time (independent of the library's table-driven one)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(data: bytes) -> int:
    crc = crc32c_bitwise(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def bytes_feature(value: bytes) -> bytes:
    return field(1, field(1, value))                 # Feature.bytes_list.value


def int64_feature(value: int) -> bytes:
    return field(3, field(1, varint(value)))         # Feature.int64_list.value, packed


def example(features: dict[str, bytes]) -> bytes:
    """tf.train.Example; values are already-encoded Feature messages."""
    entries = b"".join(field(1, field(1, k.encode()) + field(2, v)) for k, v in features.items())
    return field(1, entries)


def write_tfrecord(path, records) -> None:
    with open(path, "wb") as f:
        for data in records:
            length = struct.pack("<Q", len(data))
            f.write(length + struct.pack("<I", masked(length)) + data + struct.pack("<I", masked(data)))


def encode(image: np.ndarray, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, fmt)
    return buf.getvalue()


def random_image(rng, h=20, w=24) -> np.ndarray:
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def kaggle_record(image: np.ndarray, name: str, target: str = "monet", **extra) -> bytes:
    features = {"image_name": bytes_feature(name.encode()), "image": bytes_feature(encode(image)),
                "target": bytes_feature(target.encode()), **extra}
    return example(features)


# ---------------------------------------------------------------- TFRecord framing and Example parsing

def test_crc32c_known_value():
    assert crc32c(b"123456789") == crc32c_bitwise(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0


def test_parse_example_reads_bytes_and_int64(rng):
    data = example({"a": bytes_feature(b"xyz"), "n": int64_feature(300)})
    assert parse_example(data) == {"a": ("bytes", [b"xyz"]), "n": ("int64", [300])}


def test_read_tfrecord_roundtrip(tmp_path):
    records = [b"", b"first", bytes(range(256)) * 3]
    write_tfrecord(tmp_path / "x.tfrec", records)
    assert read_tfrecord(tmp_path / "x.tfrec") == records


def test_record_count_from_name():
    assert record_count_from_name("monet00-60.tfrec") == 60
    assert record_count_from_name("/data/photo_tfrec/photo19-350.tfrec") == 350
    assert record_count_from_name("images.tfrec") is None


def _corrupt(path, position: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[position] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_corrupt_length_checksum_names_the_file(tmp_path, rng):
    path = tmp_path / "monet00-2.tfrec"
    write_tfrecord(path, [kaggle_record(random_image(rng), f"m{i}") for i in range(2)])
    _corrupt(path, 9)                         # inside the first length's checksum
    domain = tfrecord_folder(tmp_path)
    assert len(domain) == 2                   # from the name, nothing read yet
    with pytest.raises(DataError, match=r"monet00-2\.tfrec: record 0 .*length's checksum"):
        domain.image(0)


def test_corrupt_data_and_truncated_file_name_the_file(tmp_path, rng):
    path = tmp_path / "photo.tfrec"
    write_tfrecord(path, [kaggle_record(random_image(rng), "p0")])
    _corrupt(path, 40)                        # inside the data
    with pytest.raises(DataError, match=r"photo\.tfrec: record 0: the data's checksum"):
        tfrecord_folder(tmp_path).image(0)
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(DataError, match=r"photo\.tfrec: record 0 .*truncated"):
        tfrecord_folder(tmp_path)             # no count in the name: indexed at once


def test_tfrecord_without_the_expected_features_names_the_file(tmp_path, rng):
    write_tfrecord(tmp_path / "monet00-1.tfrec",
                   [example({"image_name": bytes_feature(b"m0"), "target": bytes_feature(b"monet")})])
    with pytest.raises(DataError, match=r"monet00-1\.tfrec: record 0: no feature 'image'"):
        tfrecord_folder(tmp_path).image(0)


def test_tfrecord_feature_of_the_wrong_kind(tmp_path, rng):
    rec = example({"image_name": int64_feature(7), "image": bytes_feature(encode(random_image(rng))),
                   "target": bytes_feature(b"monet")})
    write_tfrecord(tmp_path / "monet00-1.tfrec", [rec])
    with pytest.raises(DataError, match=r"record 0: feature 'image_name' is 1 int64"):
        tfrecord_folder(tmp_path).image(0)


def test_undecodable_image_in_a_record_names_file_and_image(tmp_path):
    rec = example({"image_name": bytes_feature(b"broken"), "image": bytes_feature(b"not a jpeg"),
                   "target": bytes_feature(b"monet")})
    write_tfrecord(tmp_path / "monet00-1.tfrec", [rec])
    with pytest.raises(DataError, match=r"monet00-1\.tfrec: record 0 \(broken\): cannot decode"):
        tfrecord_folder(tmp_path).image(0)


def test_count_in_the_name_must_match_the_file(tmp_path, rng):
    write_tfrecord(tmp_path / "monet00-5.tfrec", [kaggle_record(random_image(rng), "m")] * 3)
    domain = tfrecord_folder(tmp_path)
    with pytest.raises(DataError, match=r"monet00-5\.tfrec: its name promises 5 records, the file holds 3"):
        domain.image(0)


# ---------------------------------------------------------------- the Kaggle layouts

@pytest.fixture
def kaggle_root(tmp_path, rng):
    """monet_tfrec/ (one file, 3 records), photo_tfrec/ (two files, 5 + 2), and the jpg twins."""
    images = {"monet": [random_image(rng) for _ in range(3)], "photo": [random_image(rng) for _ in range(7)]}
    (tmp_path / "monet_tfrec").mkdir()
    (tmp_path / "photo_tfrec").mkdir()
    write_tfrecord(tmp_path / "monet_tfrec" / "monet00-3.tfrec",
                   [kaggle_record(im, f"m{i}") for i, im in enumerate(images["monet"])])
    write_tfrecord(tmp_path / "photo_tfrec" / "photo00-5.tfrec",
                   [kaggle_record(im, f"p{i}", "photo") for i, im in enumerate(images["photo"][:5])])
    write_tfrecord(tmp_path / "photo_tfrec" / "photo01-2.tfrec",
                   [kaggle_record(im, f"p{i}", "photo") for i, im in enumerate(images["photo"][5:])])
    jpg = tmp_path / "jpg"
    for kind, ims in images.items():
        (jpg / f"{kind}_jpg").mkdir(parents=True)
        for i, im in enumerate(ims):
            (jpg / f"{kind}_jpg" / f"{kind}{i:02d}.jpg").write_bytes(encode(im))
    return tmp_path, images


def test_kaggle_tfrecords(kaggle_root):
    root, images = kaggle_root
    monet, photo = kaggle_monet(root)
    assert (len(monet), len(photo)) == (3, 7)
    for domain, ims in ((monet, images["monet"]), (photo, images["photo"])):
        for i, im in enumerate(ims):
            expected = np.asarray(Image.open(io.BytesIO(encode(im))).convert("RGB"))
            np.testing.assert_array_equal(domain.image(i), expected)
    assert photo.example(6)["target"] == b"photo"


def test_kaggle_jpg_twin(kaggle_root):
    root, images = kaggle_root
    monet, photo = kaggle_monet(root / "jpg")
    assert (len(monet), len(photo)) == (3, 7)
    expected = np.asarray(Image.open(io.BytesIO(encode(images["photo"][6]))))
    np.testing.assert_array_equal(photo.image(6), expected)


def test_kaggle_missing_folder_is_named(tmp_path):
    (tmp_path / "monet_tfrec").mkdir()
    with pytest.raises(DataError, match=r"photo_tfrec: no such folder"):
        kaggle_monet(tmp_path)


def test_tensorflow_reads_the_tests_file_and_writes_one_we_read(kaggle_root, tmp_path):
    tf = pytest.importorskip("tensorflow")
    root, images = kaggle_root
    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in ("image_name", "image", "target")}
    parsed = [tf.io.parse_single_example(r, spec)
              for r in tf.data.TFRecordDataset(str(root / "monet_tfrec" / "monet00-3.tfrec"))]
    assert [p["image_name"].numpy() for p in parsed] == [b"m0", b"m1", b"m2"]
    ours = np.asarray(Image.open(io.BytesIO(encode(images["monet"][1]))), np.int16)
    theirs = tf.io.decode_jpeg(parsed[1]["image"]).numpy().astype(np.int16)
    assert np.abs(ours - theirs).max() <= 8     # two JPEG decoders differ by a few levels
    # and the other way: TensorFlow's writer, our reader (packed int64 and float lists too)
    ex = tf.train.Example(features=tf.train.Features(feature={
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"\x00\xff"])),
        "ids": tf.train.Feature(int64_list=tf.train.Int64List(value=[1, -2, 300])),
        "xs": tf.train.Feature(float_list=tf.train.FloatList(value=[0.5, -1.25]))}))
    path = tmp_path / "tf.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(ex.SerializeToString())
        writer.write(ex.SerializeToString())
    records = read_tfrecord(path)
    assert len(records) == 2
    assert parse_example(records[1]) == {"image": ("bytes", [b"\x00\xff"]), "ids": ("int64", [1, -2, 300]),
                                         "xs": ("float", [0.5, -1.25])}


# ---------------------------------------------------------------- the CycleGAN folders

@pytest.fixture
def folders(tmp_path, rng):
    (tmp_path / "trainA").mkdir()
    (tmp_path / "trainB").mkdir()
    for i in range(3):
        (tmp_path / "trainA" / f"a{i}.png").write_bytes(encode(random_image(rng, 30, 20), "PNG"))
    for i in range(5):
        (tmp_path / "trainB" / f"b{i}.jpg").write_bytes(encode(random_image(rng, 16, 16)))
    (tmp_path / "trainB" / "notes.txt").write_text("not an image")
    return tmp_path


def test_cyclegan_folders(folders):
    a, b = cyclegan_folders(folders)
    assert (len(a), len(b)) == (3, 5)
    assert a.image(0).shape == (30, 20, 3) and a.image(0).dtype == np.uint8
    x = preprocess(b.image(4), 24)
    assert x.shape == (24, 24, 3) and x.dtype == np.float32 and -1 <= x.min() and x.max() <= 1


def test_missing_folder_is_named(folders):
    with pytest.raises(DataError, match=r"testA: no such folder"):
        cyclegan_folders(folders, "test")


def test_empty_domain_is_named(folders):
    for f in (folders / "trainA").iterdir():
        f.unlink()
    with pytest.raises(DataError, match=r"trainA: no JPEG or PNG images"):
        cyclegan_folders(folders)


def test_undecodable_file_is_named(folders):
    (folders / "trainA" / "a1.png").write_bytes(b"\x89PNG garbage")
    domain = image_folder(folders / "trainA")
    with pytest.raises(DataError, match=r"trainA/a1\.png: cannot decode"):
        domain.image(1)


# ---------------------------------------------------------------- preprocessing

def test_preprocess_range_and_resize():
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, 4:] = 255
    x = preprocess(image, 8)
    assert x[0, 0, 0] == -1.0 and x[0, 7, 0] == 1.0
    assert preprocess(image, 16).shape == (16, 16, 3)


def test_jitter_is_a_crop_of_the_enlarged_image(rng):
    image = random_image(rng, 32, 32)
    big = (resize(image, 36).astype(np.float32) / 127.5 - 1.0)
    x = preprocess(image, 32, np.random.default_rng(0), jitter=True)
    windows = [big[i:i + 32, j:j + 32] for i in range(5) for j in range(5)]
    assert any(np.array_equal(x, w) for w in windows)   # load size round(32 * 286/256) = 36


def test_flip_happens_about_half_the_time(rng):
    image = random_image(rng, 8, 8)
    plain = preprocess(image, 8)
    outs = [preprocess(image, 8, np.random.default_rng(s), flip=True) for s in range(40)]
    flipped = sum(np.array_equal(o, plain[:, ::-1]) for o in outs)
    assert sum(np.array_equal(o, plain) for o in outs) + flipped == 40
    assert 8 <= flipped <= 32
    with pytest.raises(ValueError, match="rng"):
        preprocess(image, 8, flip=True)


# ---------------------------------------------------------------- unpaired sampling

def _domain(n, value_offset=0):
    """Image k is filled with value k + offset, so batches reveal their indices."""
    images = (np.arange(n)[:, None, None] + value_offset).astype(np.uint8) * np.ones((1, 4, 4), np.uint8)
    return ArrayDomain(images, name=f"{n} images")


def _ids(batch, offset=0):
    return [int(v) for v in np.rint((batch[:, 0, 0, 0] + 1) * 127.5) - offset]


@pytest.mark.parametrize("n_a,n_b", [(7, 3), (3, 7)])
def test_the_larger_domain_is_never_truncated(n_a, n_b):
    a, b = _domain(n_a), _domain(n_b, 100)
    pairs = UnpairedDomains(a, b, size=4, batch_size=1, seed=5)
    assert len(list(zip(range(n_a), range(n_b)))) == 3     # the pitfall: zip stops at the smaller
    seen_a, seen_b = [], []
    for xa, xb in pairs:
        seen_a += _ids(xa)
        seen_b += _ids(xb, 100)
    assert len(seen_a) == len(seen_b) == 7
    big, small = (seen_a, seen_b) if n_a > n_b else (seen_b, seen_a)
    assert sorted(big) == list(range(7))                   # every image of the larger domain
    assert set(small) == set(range(3))                     # the smaller one reused, all of it
    assert max(np.bincount(small)) - min(np.bincount(small)) <= 1


def test_batches_pairs_change_between_epochs_and_repeat_with_the_seed():
    pairs = UnpairedDomains(_domain(7), _domain(3, 100), size=4, batch_size=2, seed=1)
    assert pairs.steps_per_epoch == 4                      # ceil(7 / 2)
    a0, b0 = pairs.epoch_indices(0)
    a1, b1 = pairs.epoch_indices(1)
    assert set(a0) == set(range(7)) and len(a0) == 8
    assert not (np.array_equal(a0, a1) and np.array_equal(b0, b1))
    again = UnpairedDomains(_domain(7), _domain(3, 100), size=4, batch_size=2, seed=1)
    np.testing.assert_array_equal(again.epoch_indices(1)[1], b1)
    first = [x for x, _ in pairs]                          # iter() runs epoch 0, then 1
    assert [_ids(x) for x in first] == [list(a0[i:i + 2]) for i in range(0, 8, 2)]
    assert pairs.epochs_done == 1


def test_layout_and_augmentation_shapes():
    pairs = UnpairedDomains(_domain(5), _domain(4), size=6, batch_size=3, jitter=True, flip=True,
                            layout="nchw")
    xa, xb = next(iter(pairs))
    assert xa.shape == xb.shape == (3, 1, 6, 6) and xa.dtype == np.float32


def test_empty_array_domain_is_an_error():
    with pytest.raises(DataError, match="empty"):
        ArrayDomain(np.zeros((0, 4, 4), np.uint8), name="nothing")


# ---------------------------------------------------------------- the digits default

def test_digits_domains(mnist):
    d = digits_domains(mnist=mnist)
    assert (len(d.train_a), len(d.test_a)) == (1497, 300)
    assert (len(d.train_b), len(d.test_b)) == (8000, 2000)
    for dom in (d.train_a, d.test_a, d.train_b, d.test_b):
        assert dom.images.shape[1:] == (28, 28, 1) and dom.images.dtype == np.uint8
        assert set(np.unique(dom.labels)) == set(range(10))
    a = d.train_a.images[..., 0].astype(np.float64)
    assert a.max() == 255 and a[:, :4].max() == 0 and a[:, 24:].max() == 0     # a 20x20 box, like MNIST
    # both domains centred alike: mean centre of mass within a pixel of each other
    def centre(x):
        x = x[..., 0].astype(np.float64)
        rows = (x.sum(axis=2) * np.arange(28)).sum(axis=1) / x.sum(axis=(1, 2))
        return rows.mean()
    assert abs(centre(d.train_a.images) - centre(d.train_b.images)) < 1.0
    x = d.test_a.array(28, range(4))
    assert x.shape == (4, 28, 28, 1) and x.min() == -1.0


def test_digits_domains_at_32(mnist):
    d = digits_domains(size=32, mnist=mnist)
    assert d.train_a.images.shape[1:] == d.test_b.images.shape[1:] == (32, 32, 1)
