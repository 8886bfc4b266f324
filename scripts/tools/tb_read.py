#!/usr/bin/env python3
"""Checks a disttrain TensorBoard log directory with TensorBoard's own event loader.

usage: tb_read.py LOGDIR [EXPECTED.json] [--metrics RUN/metrics.jsonl]

Loads LOGDIR with tensorboard.backend.event_processing.event_accumulator.EventAccumulator
(keeping every event, purging orphaned data as TensorBoard does), and independently re-reads
every events.out.tfevents.* file's TFRecord framing, checking both masked CRC-32Cs of every
record with a CRC implementation of its own.

EXPECTED (JSON) may hold:
  "scalars": {TAG: [[step, value], ...]   exactly these steps, values equal as float32
                 | {"min_count": N}}       at least N events
  "images":  {TAG: [{"step": S, "width": W, "height": H}, ...] | {"min_count": N}}
  "only_these_tags": true                  no other scalar or image tag may appear
  "event_files": N                         exactly N event files in LOGDIR
Without EXPECTED, every tag the trainer writes must be present at least once.

Always checked: file version 2, every scalar finite, steps strictly increasing within each
tag (a resumed run must mark its restart, see TensorBoardWriter.sessionStart), and every
image a PNG whose header matches the event's width and height. With --metrics, each
`loss/test` event at a step that metrics.jsonl has must equal its `test_loss`.

Prints one line per check and exits non-zero on the first failure.
"""
import json
import math
import os
import struct
import sys

TRAINER_SCALARS = ["loss/train", "loss/test", "loss/train_bce", "loss/train_kl",
                   "throughput/samples_per_s", "optimizer/lr", "optimizer/grad_norm_mean",
                   "optimizer/grad_norm_max"]
TRAINER_IMAGES = ["grid/generation"]


def fail(message):
    print(f"tb_read: FAIL: {message}")
    sys.exit(1)


def ok(message):
    print(f"tb_read: ok: {message}")


# --- An independent reading of the framing --------------------------------------------------

def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def check_framing(path):
    """Number of records in the file; fails on a bad CRC or a cut record."""
    with open(path, "rb") as f:
        data = f.read()
    pos, count = 0, 0
    while pos < len(data):
        if pos + 12 > len(data):
            fail(f"{path}: record at byte {pos} is cut short (length header)")
        (length,) = struct.unpack_from("<Q", data, pos)
        (length_crc,) = struct.unpack_from("<I", data, pos + 8)
        if masked(crc32c(data[pos:pos + 8])) != length_crc:
            fail(f"{path}: record at byte {pos}: masked CRC of the length does not match")
        if pos + 16 + length > len(data):
            fail(f"{path}: record at byte {pos} is cut short ({length} data bytes promised)")
        payload = data[pos + 12:pos + 12 + length]
        (data_crc,) = struct.unpack_from("<I", data, pos + 12 + length)
        if masked(crc32c(payload)) != data_crc:
            fail(f"{path}: record at byte {pos}: masked CRC of the data does not match")
        pos += 16 + length
        count += 1
    return count


def png_size(blob):
    if blob[:8] != b"\x89PNG\r\n\x1a\n" or blob[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", blob[16:24])


def close_as_float32(a, b):
    fa = struct.unpack("<f", struct.pack("<f", a))[0]
    fb = struct.unpack("<f", struct.pack("<f", b))[0]
    return fa == fb or abs(fa - fb) <= 1e-6 * max(abs(fa), abs(fb))


def main(argv):
    args = [a for a in argv[1:]]
    metrics = None
    if "--metrics" in args:
        i = args.index("--metrics")
        if i + 1 >= len(args):
            fail("--metrics needs a file")
        metrics = args[i + 1]
        del args[i:i + 2]
    if not args or len(args) > 2 or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        sys.exit(2)
    logdir = args[0]
    if len(args) == 2:
        with open(args[1]) as f:
            expected = json.load(f)
    else:
        expected = {"scalars": {t: {"min_count": 1} for t in TRAINER_SCALARS},
                    "images": {t: {"min_count": 1} for t in TRAINER_IMAGES}}

    if not os.path.isdir(logdir):
        fail(f"{logdir}: not a directory")
    files = sorted(n for n in os.listdir(logdir) if n.startswith("events.out.tfevents."))
    if not files:
        fail(f"{logdir}: no events.out.tfevents.* file")
    if "event_files" in expected and len(files) != expected["event_files"]:
        fail(f"{logdir}: {len(files)} event files, expected {expected['event_files']}: {files}")
    records = sum(check_framing(os.path.join(logdir, n)) for n in files)
    ok(f"{len(files)} event file(s), {records} records, every length and data CRC-32C matches")

    from tensorboard.backend.event_processing import event_accumulator as ea
    import tensorboard
    # 0 keeps every event (the default keeps only 4 images per tag).
    acc = ea.EventAccumulator(logdir, size_guidance={ea.SCALARS: 0, ea.IMAGES: 0}, purge_orphaned_data=True)
    acc.Reload()
    if acc.file_version != 2.0:
        fail(f"file version is {acc.file_version!r}, expected 2.0 (\"brain.Event:2\")")
    tags = acc.Tags()
    scalar_tags, image_tags = set(tags.get("scalars", [])), set(tags.get("images", []))
    ok(f"TensorBoard {tensorboard.__version__} loaded {len(scalar_tags)} scalar tag(s) "
       f"{sorted(scalar_tags)} and {len(image_tags)} image tag(s) {sorted(image_tags)}")

    # Generic checks on everything present.
    for tag in sorted(scalar_tags):
        events = acc.Scalars(tag)
        steps = [e.step for e in events]
        if any(b <= a for a, b in zip(steps, steps[1:])):
            fail(f"scalar {tag}: steps not strictly increasing: {steps[:20]}{' ...' if len(steps) > 20 else ''}")
        bad = [e for e in events if not math.isfinite(e.value)]
        if bad:
            fail(f"scalar {tag}: non-finite value {bad[0].value} at step {bad[0].step}")
    for tag in sorted(image_tags):
        events = acc.Images(tag)
        steps = [e.step for e in events]
        if any(b <= a for a, b in zip(steps, steps[1:])):
            fail(f"image {tag}: steps not strictly increasing: {steps}")
        for e in events:
            size = png_size(e.encoded_image_string)
            if size is None:
                fail(f"image {tag} at step {e.step}: not a PNG")
            if size != (e.width, e.height):
                fail(f"image {tag} at step {e.step}: PNG is {size[0]}x{size[1]}, event says {e.width}x{e.height}")
    ok("steps strictly increasing per tag, scalars finite, images are PNGs of their stated size")

    # Expectations.
    want_scalars = expected.get("scalars", {})
    want_images = expected.get("images", {})
    for tag, want in want_scalars.items():
        if tag not in scalar_tags:
            fail(f"scalar tag {tag} missing (present: {sorted(scalar_tags)})")
        got = [(e.step, e.value) for e in acc.Scalars(tag)]
        if isinstance(want, dict):
            if len(got) < want.get("min_count", 1):
                fail(f"scalar {tag}: {len(got)} events, expected at least {want['min_count']}")
            continue
        if [s for s, _ in got] != [int(s) for s, _ in want]:
            fail(f"scalar {tag}: steps {[s for s, _ in got]}, expected {[int(s) for s, _ in want]}")
        for (step, value), (_, w) in zip(got, want):
            if not close_as_float32(value, float(w)):
                fail(f"scalar {tag} at step {step}: {value!r}, expected {w!r}")
    for tag, want in want_images.items():
        if tag not in image_tags:
            fail(f"image tag {tag} missing (present: {sorted(image_tags)})")
        got = acc.Images(tag)
        if isinstance(want, dict):
            if len(got) < want.get("min_count", 1):
                fail(f"image {tag}: {len(got)} events, expected at least {want['min_count']}")
            continue
        got_list = [{"step": e.step, "width": e.width, "height": e.height} for e in got]
        want_list = [{"step": int(w["step"]), "width": int(w["width"]), "height": int(w["height"])} for w in want]
        if got_list != want_list:
            fail(f"image {tag}: {got_list}, expected {want_list}")
    if expected.get("only_these_tags"):
        extra = (scalar_tags - set(want_scalars)) | (image_tags - set(want_images))
        if extra:
            fail(f"unexpected tags {sorted(extra)}")
    counts = {t: len(acc.Scalars(t)) for t in want_scalars}
    ok(f"expected scalars {counts} and images "
       f"{ {t: [e.step for e in acc.Images(t)] for t in want_images} } are there")

    if metrics and os.path.exists(metrics) and "loss/test" in scalar_tags:
        test = {e.step: e.value for e in acc.Scalars("loss/test")}
        matched = 0
        with open(metrics) as f:
            for line in f:
                if not line.strip():
                    continue
                m = json.loads(line)
                step = int(m["step"])
                if step in test:
                    if not close_as_float32(test[step], float(m["test_loss"])):
                        fail(f"loss/test at step {step} is {test[step]!r}, metrics.jsonl says {m['test_loss']!r}")
                    matched += 1
        if matched:
            ok(f"loss/test equals metrics.jsonl's test_loss at all {matched} shared steps")
        else:
            print("tb_read: note: no loss/test step coincides with a metrics.jsonl step; not cross-checked")
    print("tb_read: passed")


if __name__ == "__main__":
    main(sys.argv)
